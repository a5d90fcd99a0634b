"""One set of recorders for all pytest-xdist workers of a run: one proxy per convention, not one per worker.

Starting a proxy costs about a second of imports, more than recording every golden of a convention, so
workers that each started their own made ``pytest -n 2`` slower than a serial run. The xdist controller
(it outlives every worker) serves a ``RecordingService`` on loopback; each worker's ``RemoteRecorder``
(``recorder/remote_recorder.py``) sends it the recordings, and its ``SpanRecorder`` keeps the workers' requests in flight together through
one proxy per settings. The service rebuilds a worker's settings from what the worker sends and checks
them against the worker's fingerprint; where they differ (a test changed the environment, say), the
worker records with a recorder of its own, as without xdist. A golden asked for by two workers at once
is recorded once; the second is told another process wrote it. Only the run's workers are served: each
request carries the service's random token (``RecordingService.address``), or gets 403.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import threading
from concurrent.futures import Future
from typing import Any, Callable

import testopeninference.errors as errors
from testopeninference.errors import ClientGoneError, RequestError
from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder.loopback import BackgroundServer, header, receive_body
from testopeninference.recorder.record_result import RecordResult
from testopeninference.recorder.remote_recorder import TOKEN_HEADER, fingerprint
from testopeninference.recorder.session import SpanRecorder

MAX_REQUEST_BYTES = 64 * 1024


class _SettingsDiffer(Exception):
    """The service would record with other settings than the worker's: it answers 409 and the worker records
    itself (control flow inside this module, never raised to a caller)."""


class RecordingService(BackgroundServer):
    """Records for every worker of a run, one ``SpanRecorder`` (one proxy) per settings, started on first use."""

    thread_name = "recording-service"

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self._progress = progress
        self._recorders: dict[Settings, SpanRecorder] = {}
        self._in_flight: dict[tuple[Settings, str], Future[RecordResult]] = {}
        self._lock = threading.Lock()
        self.token = secrets.token_hex(16)

    @property
    def address(self) -> str:
        """``URL#TOKEN``: what a worker needs to record here (``RemoteRecorder``)."""
        return f"{self.url}#{self.token}"

    def _app(self) -> _ServiceApp:
        return _ServiceApp(self)

    def record(self, request: dict[str, Any]) -> RecordResult:
        """Record one golden for a worker; a golden already in flight is waited for, not recorded twice."""
        settings = Settings.from_env(convention=request["convention"], cassettes_dir=request["cassettes_dir"],
                                     spans_dir=request["spans_dir"], record_mode=RecordMode.NONE)
        if fingerprint(settings) != request["fingerprint"]:
            raise _SettingsDiffer()
        key = (settings, str(request["cassette"]))
        with self._lock:
            if settings not in self._recorders:
                self._recorders[settings] = SpanRecorder(settings, progress=self._progress).start_in_background()
            recorder, running = self._recorders[settings], self._in_flight.get(key)
            if running is None:
                self._in_flight[key] = mine = Future[RecordResult]()
        if running is not None:
            return dataclasses.replace(running.result(), recorded=False)  # written by the other worker's request
        try:
            result = recorder.record(key[1], force=bool(request["force"]))
            mine.set_result(result)
            return result
        except BaseException as error:
            mine.set_exception(error)
            raise
        finally:
            with self._lock:
                del self._in_flight[key]

    def stop(self) -> None:
        super().stop()
        with self._lock:
            recorders, self._recorders = list(self._recorders.values()), {}
        for recorder in recorders:
            recorder.stop()


class _ServiceApp:
    """``POST /record`` with a JSON request: 200 and the result, 409 when the settings differ, else an error."""

    def __init__(self, service: RecordingService) -> None:
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        try:
            await receive_body(scope, receive, MAX_REQUEST_BYTES, body.extend)
            if not secrets.compare_digest(header(scope, TOKEN_HEADER.lower().encode()) or "", self.service.token):
                raise RequestError(403, f"only this run's pytest-xdist workers record here (no valid {TOKEN_HEADER})")
            if scope["method"] != "POST" or scope["path"] != "/record":
                raise RequestError(404, "only POST /record is served")
            request = json.loads(body)
            result = await asyncio.to_thread(self.service.record, request)
            status, answer = 200, {"cassette": result.cassette, "path": str(result.path),
                                   "recorded": result.recorded, "seconds": result.seconds}
        except ClientGoneError:
            return
        except RequestError as error:
            status, answer = error.status, {"error": {"type": "RecordingError", "message": str(error)}}
        except _SettingsDiffer:
            status, answer = 409, {"error": {"type": "SettingsDiffer", "message": "settings differ"}}
        except errors.TestOpenInferenceError as error:
            status, answer = 500, {"error": {"type": type(error).__name__, "message": str(error)}}
        except (ValueError, KeyError, TypeError) as error:  # not a request from a worker of ours
            status, answer = 400, {"error": {"type": "RecordingError", "message": f"bad request: {error!r}"}}
        except Exception as error:  # never a dropped connection: the worker gets the failure
            status, answer = 500, {"error": {"type": "RecordingError", "message": f"recording failed: {error!r}"}}
        payload = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

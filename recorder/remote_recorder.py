"""A pytest-xdist worker's recorder: it sends each recording to the run's ``RecordingService``.

The worker side of ``recorder/shared_recording.py``, kept apart so that a worker loads only the standard
library's HTTP client and this module, not the recorder's servers, proxy code and HTTP stack (about half a
second of CPU per worker, with four workers on two cores). One keep-alive connection per worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import testopeninference.errors as errors
from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder.record_result import RecordResult

if TYPE_CHECKING:
    from testopeninference.recorder.session import SpanRecorder

TOKEN_HEADER = "X-Recording-Token"
WAIT_SECONDS = 3600.0
"""How long a worker waits for one recording: it may include making the proxy's virtualenv (minutes)."""


def fingerprint(settings: Settings) -> str:
    """Settings as the service must rebuild them to record for a worker (record mode aside)."""
    key = dataclasses.replace(settings, record_mode=RecordMode.NONE)
    return hashlib.sha256(repr(key).encode()).hexdigest()


def request_for(settings: Settings, cassette: str, force: bool) -> dict[str, Any]:
    """The body of ``POST /record``: what the service needs to rebuild the worker's settings and check them."""
    return {"cassette": cassette, "force": force, "convention": settings.convention,
            "cassettes_dir": str(settings.cassettes_dir), "spans_dir": str(settings.spans_dir),
            "fingerprint": fingerprint(settings)}


class RemoteRecorder:
    """A worker's recorder: records through the service at ``address``, or locally where the settings differ."""

    def __init__(self, address: str, settings: Settings, local: Callable[[Settings], SpanRecorder]) -> None:
        self.url, _, self._token = address.partition("#")
        self.settings = settings
        self._make_local = local
        self._local: SpanRecorder | None = None
        host, _, port = self.url.removeprefix("http://").rpartition(":")
        self._connection = http.client.HTTPConnection(host, int(port), timeout=WAIT_SECONDS)

    def record(self, cassette: str, *, force: bool = False) -> RecordResult:
        if self._local is None:
            result = self._record_remotely(cassette, force)
            if result is not None:
                return result
            self._local = self._make_local(self.settings)
        return self._local.record(cassette, force=force)

    def _record_remotely(self, cassette: str, force: bool) -> RecordResult | None:
        """The service's recording; ``None`` when it would record with other settings than ours (409)."""
        status, answer = self._post(cassette, json.dumps(request_for(self.settings, cassette, force)).encode())
        if status == 409:
            return None
        if status != 200:
            raise _error_named(answer["error"]["type"])(answer["error"]["message"])
        return RecordResult(answer["cassette"], Path(answer["path"]), answer["recorded"], answer["seconds"])

    def _post(self, cassette: str, body: bytes) -> tuple[int, Any]:
        """One ``POST /record``; a keep-alive connection the service closed while idle is opened again once."""
        headers = {TOKEN_HEADER: self._token, "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                self._connection.request("POST", "/record", body=body, headers=headers)
                response = self._connection.getresponse()
                return response.status, json.loads(response.read())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self._connection.close()
                if attempt == 2:
                    raise self._unanswered(cassette, error) from None
            except (OSError, http.client.HTTPException, ValueError) as error:
                self._connection.close()
                raise self._unanswered(cassette, error) from None
        raise AssertionError("unreachable")

    def _unanswered(self, cassette: str, error: Exception) -> errors.RecordingError:
        return errors.RecordingError(
            f"recording {cassette!r}: the run's recording service at {self.url} did not answer ({error!r}). "
            "Run pytest again; without -n, each process records for itself."
        )

    def stop(self) -> None:
        self._connection.close()
        if self._local is not None:
            self._local.stop()


def _error_named(name: str) -> type[errors.TestOpenInferenceError]:
    """The typed error the service raised, raised again in the worker."""
    found = getattr(errors, name, None)
    if isinstance(found, type) and issubclass(found, errors.TestOpenInferenceError):
        return found
    return errors.RecordingError

"""A fake OpenAI server that replays cassettes.

``CassetteReplayer.handle`` is the whole replay logic, a function from request
to response (unit tests need no sockets); ``FakeOpenAIServer`` is a thin
HTTP shell around it, bound to 127.0.0.1. The cassette is chosen by the
``X-Cassette-Name`` header; without one, the first cassette whose request
matches is replayed. Event streams are written event by event, flushed after
each, as the real API streams them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import itertools
import json
import threading
from collections import Counter
from typing import Any

from testopeninference.recorder.cassette import Cassette, CassetteLibrary, validate_name
from testopeninference.recorder.live import LiveRecorder
from testopeninference.recorder.loopback import BackgroundServer, ClientGone, ConnectionLimits, RequestError, receive_body, send_error
from testopeninference.recorder.matchers import DEFAULT_MATCH_ON, IncomingRequest, mismatches
from testopeninference.errors import CassetteError, CassetteNotFoundError, InvalidCassetteError, TestOpenInferenceError

CASSETTE_HEADER = "X-Cassette-Name"

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_REQUESTS_KEPT = 100  # per cassette: trace propagation checks look at the latest ones
_ERRORS_KEPT = 1000

# Headers the server computes itself rather than replaying.
_NOT_REPLAYED = {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}


@dataclasses.dataclass(frozen=True)
class ReplayResponse:
    status: int
    headers: list[tuple[str, str]]
    chunks: tuple[bytes, ...]  # one per SSE event; a single chunk otherwise
    streamed: bool = False

    @functools.cached_property
    def payload(self) -> bytes:
        """The body sent whole (not streamed)."""
        return b"".join(self.chunks)

    @functools.cached_property
    def wire_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as sent, with the Content-Length of a whole body: encoded once, as a replay is reused."""
        headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in self.headers]
        if not self.streamed:
            headers.append((b"content-length", str(len(self.payload)).encode()))
        return headers


@dataclasses.dataclass(frozen=True)
class ReplayError:
    """A request the replayer could not serve, kept so the recorder can report it."""

    cassette: str | None
    status: int
    message: str


def split_events(body: str) -> list[str]:
    """Split an SSE body into events, each keeping its terminating blank line."""
    events, current = [], []
    for line in body.replace("\r\n", "\n").split("\n"):  # not splitlines(): JSON may hold U+2028 and friends
        if line.strip():
            current.append(line)
        elif current:
            events.append("\n".join(current) + "\n\n")
            current = []
    if current:
        events.append("\n".join(current) + "\n\n")
    return events


class CassetteReplayer:
    """Turns a request into the recorded response of the matching cassette."""

    def __init__(
        self,
        library: CassetteLibrary,
        match_on: tuple[str, ...] = DEFAULT_MATCH_ON,
        live: LiveRecorder | None = None,
        requests_kept: int = DEFAULT_REQUESTS_KEPT,
    ) -> None:
        self.library = library
        self.match_on = match_on
        self.live = live  # records missing cassettes from a real API when set
        self.requests_kept = requests_kept
        self.play_counts: Counter[str] = Counter()
        # The latest requests per cassette name (headers included, for trace propagation checks), numbered
        # in arrival order: a long session keeps a bounded number, not every body it was ever sent.
        self._received: dict[str | None, collections.deque[tuple[int, IncomingRequest]]] = {}
        self._arrivals = itertools.count()
        self._errors: list[ReplayError] = []
        self._replays: dict[str, tuple[Cassette, ReplayResponse]] = {}  # per name, while the cassette is the same
        self._lock = threading.Lock()

    @property
    def received(self) -> list[IncomingRequest]:
        """The requests kept (the latest ``requests_kept`` per cassette name), in arrival order."""
        with self._lock:
            numbered = [item for kept in self._received.values() for item in kept]
        return [request for _, request in sorted(numbered, key=lambda item: item[0])]

    def handle(self, request: IncomingRequest) -> ReplayResponse:
        name = request.headers.get(CASSETTE_HEADER.lower())
        self._keep(name, request)
        if not name:
            return self._handle_unnamed(request)
        try:
            validate_name(name)
        except InvalidCassetteError as error:  # a client's mistake, not a broken cassette
            return self._error(name[:200], 400, "cassette_name_invalid", str(error))
        try:
            cassette = self.library.load(name)
        except CassetteNotFoundError as error:
            if self.live is None:
                hint = "Check the X-Cassette-Name header, or set OPENAI_API_KEY to record it from the live API."
                return self._error(name, 500, "cassette_not_found", f"{error} {hint}")
            return self._record_live(name, request)
        except CassetteError as error:
            return self._error(name, 500, "cassette_invalid", str(error))
        except OSError as error:  # a name the file system refuses, such as one over 255 bytes
            message = f"cassette name {name[:80]!r}... cannot be a file name ({error.strerror}); use a shorter name"
            return self._error(name, 400, "cassette_name_invalid", message)
        try:
            differences = mismatches(cassette.request, request, self.match_on)
        except RecursionError:
            return self._error(name, 400, "body_too_deep", "the request's JSON body nests too deeply to compare")
        except ValueError as error:  # the cassette's own request body is not JSON
            message = f"cassette {cassette.path} cannot be matched: its request body is not JSON ({error})"
            return self._error(name, 500, "cassette_invalid", message)
        if differences:
            detail = "; ".join(differences)
            message = (
                f"request does not match cassette {cassette.path}: {detail}. "
                "Send the cassette's request unchanged, or delete the cassette to record it again."
            )
            return self._error(name, 409, "cassette_mismatch", message)
        return self._replay(cassette)

    def _keep(self, name: str | None, request: IncomingRequest) -> None:
        with self._lock:
            if name not in self._received:
                self._received[name] = collections.deque(maxlen=self.requests_kept)
            self._received[name].append((next(self._arrivals), request))

    def _record_live(self, name: str, request: IncomingRequest) -> ReplayResponse:
        try:
            with self._lock:  # one live call per missing cassette, even with concurrent requests
                cassette = self.library.load(name) if self.library.path(name).exists() else None
                cassette = cassette or self.live.record(name, request)
        except TestOpenInferenceError as error:
            return self._error(name, 502, "live_recording_failed", str(error))
        return self._replay(cassette)

    def take_errors(self, cassette: str) -> list[ReplayError]:
        """Remove and return the errors recorded for one cassette name."""
        with self._lock:
            taken = [e for e in self._errors if e.cassette == cassette]
            self._errors = [e for e in self._errors if e.cassette != cassette]
        return taken

    def _handle_unnamed(self, request: IncomingRequest) -> ReplayResponse:
        for name in self.library.names():
            try:
                cassette = self.library.load(name)
                if not mismatches(cassette.request, request, self.match_on):
                    return self._replay(cassette)
            except RecursionError:
                return self._error(None, 400, "body_too_deep", "the request's JSON body nests too deeply to compare")
            except (CassetteError, ValueError):  # a broken cassette spoils only requests for itself
                continue
        message = (
            f"no {CASSETTE_HEADER} header and no cassette in {self.library.directory} matches "
            f"{request.method} {request.path}. Send the header {CASSETTE_HEADER}: <cassette name>."
        )
        return self._error(None, 400, "cassette_header_missing", message)

    def _replay(self, cassette: Cassette) -> ReplayResponse:
        with self._lock:
            self.play_counts[cassette.name] += 1
        built = self._replays.get(cassette.name)
        if built is None or built[0] is not cassette:
            built = self._replays[cassette.name] = (cassette, self._build_replay(cassette))
        return built[1]

    @staticmethod
    def _build_replay(cassette: Cassette) -> ReplayResponse:
        response = cassette.interactions[0].response
        headers = [(k, v) for k, values in response.headers.items() if k.lower() not in _NOT_REPLAYED for v in values]
        if response.is_event_stream:
            chunks = tuple(event.encode() for event in split_events(response.body))
            return ReplayResponse(response.code, headers, chunks, streamed=True)
        return ReplayResponse(response.code, headers, (response.body.encode(),))

    def _error(self, cassette: str | None, status: int, code: str, message: str) -> ReplayResponse:
        with self._lock:
            self._errors.append(ReplayError(cassette, status, message))
            del self._errors[:-_ERRORS_KEPT]  # nobody takes them under `serve`
        content_type, body = openai_error_body(status, message, code)
        return ReplayResponse(status, [("Content-Type", content_type)], (body,))


# Codes of the refusals made before a request reaches the replayer.
_REFUSAL_CODES = {400: "bad_request", 408: "request_timeout", 413: "request_too_large", 503: "too_many_connections"}


def _refusal_body(status: int, message: str, request_type: str = "") -> tuple[str, bytes]:
    return openai_error_body(status, message)


def openai_error_body(status: int, message: str, code: str | None = None) -> tuple[str, bytes]:
    """An error shaped as the OpenAI API shapes its own, so SDKs and gateways show the message."""
    code = code or _REFUSAL_CODES.get(status, "server_error")
    body = {"error": {"message": message, "type": "testopeninference_error", "param": None, "code": code}}
    return "application/json", json.dumps(body).encode()


class _ReplayApp:
    """The ASGI shell around the replayer: read the body, replay, write the answer (events one by one)."""

    def __init__(self, replayer: CassetteReplayer, max_body_bytes: int) -> None:
        self.replayer = replayer
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        try:
            await receive_body(scope, receive, self.max_body_bytes, body.extend)
        except RequestError as error:
            return await send_error(send, _refusal_body, error.status, str(error), close=True)
        except ClientGone:
            return
        incoming = IncomingRequest(
            method=scope["method"],
            path=scope["path"],
            headers={key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]},
            body=bytes(body),
            query=scope["query_string"].decode("latin-1"),
        )
        if self.replayer.live is None:
            response = self.replayer.handle(incoming)
        else:  # a live recording waits on a remote API: keep the loop serving others meanwhile
            response = await asyncio.to_thread(self.replayer.handle, incoming)
        await _write(send, response)


async def _write(send: Any, response: ReplayResponse) -> None:
    await send({"type": "http.response.start", "status": response.status, "headers": response.wire_headers})
    if not response.streamed:
        await send({"type": "http.response.body", "body": response.payload})
        return
    for chunk in response.chunks:  # chunked framing by h11, each event its own chunk, written at once
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class FakeOpenAIServer(BackgroundServer):
    """The replayer served over HTTP on loopback, in a background thread."""

    thread_name = "fake-openai"

    def __init__(
        self,
        replayer: CassetteReplayer,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: ConnectionLimits | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(host, port, limits)
        self.replayer = replayer
        self.max_body_bytes = max_body_bytes

    def _app(self) -> _ReplayApp:
        return _ReplayApp(self.replayer, self.max_body_bytes)

    def _error_body(self, status: int, message: str, request_type: str = "") -> tuple[str, bytes]:
        return openai_error_body(status, message)

    @property
    def base_url(self) -> str:
        """Address to give an OpenAI client (without ``/v1``)."""
        return self.url

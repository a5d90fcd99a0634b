"""A fake OpenAI server that replays cassettes.

``CassetteReplayer.handle`` is the whole replay logic, a function from request
to response (unit tests need no sockets); ``FakeOpenAIServer`` is a thin
HTTP shell around it, bound to 127.0.0.1. The cassette is chosen by the
``X-Cassette-Name`` header; without one, the first cassette whose request
matches is replayed. Event streams are written event by event, flushed after
each, as the real API streams them.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Iterator
from urllib.parse import urlsplit

from testopeninference.recorder.cassette import Cassette, CassetteLibrary
from testopeninference.recorder.live import LiveRecorder
from testopeninference.recorder.loopback import BackgroundServer, QuietThreadingHTTPServer
from testopeninference.recorder.matchers import DEFAULT_MATCH_ON, IncomingRequest, mismatches
from testopeninference.errors import CassetteError, CassetteNotFoundError, TestOpenInferenceError

CASSETTE_HEADER = "X-Cassette-Name"

# Headers the server computes itself rather than replaying.
_NOT_REPLAYED = {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}


@dataclasses.dataclass(frozen=True)
class ReplayResponse:
    status: int
    headers: list[tuple[str, str]]
    chunks: tuple[bytes, ...]  # one per SSE event; a single chunk otherwise
    streamed: bool = False


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
    ) -> None:
        self.library = library
        self.match_on = match_on
        self.live = live  # records missing cassettes from a real API when set
        self.play_counts: Counter[str] = Counter()
        self.received: list[IncomingRequest] = []  # every request, headers included (trace propagation checks)
        self._errors: list[ReplayError] = []
        self._lock = threading.Lock()

    def handle(self, request: IncomingRequest) -> ReplayResponse:
        with self._lock:
            self.received.append(request)
        name = request.headers.get(CASSETTE_HEADER.lower())
        if not name:
            return self._handle_unnamed(request)
        try:
            cassette = self.library.load(name)
        except CassetteNotFoundError as error:
            if self.live is None:
                hint = "Check the X-Cassette-Name header, or set OPENAI_API_KEY to record it from the live API."
                return self._error(name, 500, "cassette_not_found", f"{error} {hint}")
            return self._record_live(name, request)
        except CassetteError as error:
            return self._error(name, 500, "cassette_invalid", str(error))
        differences = mismatches(cassette.request, request, self.match_on)
        if differences:
            detail = "; ".join(differences)
            message = (
                f"request does not match cassette {cassette.path}: {detail}. "
                "Send the cassette's request unchanged, or delete the cassette to record it again."
            )
            return self._error(name, 409, "cassette_mismatch", message)
        return self._replay(cassette)

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
            except CassetteError:
                continue
            if not mismatches(cassette.request, request, self.match_on):
                return self._replay(cassette)
        message = (
            f"no {CASSETTE_HEADER} header and no cassette in {self.library.directory} matches "
            f"{request.method} {request.path}. Send the header {CASSETTE_HEADER}: <cassette name>."
        )
        return self._error(None, 400, "cassette_header_missing", message)

    def _replay(self, cassette: Cassette) -> ReplayResponse:
        with self._lock:
            self.play_counts[cassette.name] += 1
        response = cassette.interactions[0].response
        headers = [(k, v) for k, values in response.headers.items() if k.lower() not in _NOT_REPLAYED for v in values]
        if response.is_event_stream:
            chunks = tuple(event.encode() for event in split_events(response.body))
            return ReplayResponse(response.code, headers, chunks, streamed=True)
        return ReplayResponse(response.code, headers, (response.body.encode(),))

    def _error(self, cassette: str | None, status: int, code: str, message: str) -> ReplayResponse:
        with self._lock:
            self._errors.append(ReplayError(cassette, status, message))
        body = {"error": {"message": message, "type": "testopeninference_error", "param": None, "code": code}}
        headers = [("Content-Type", "application/json")]
        return ReplayResponse(status, headers, (json.dumps(body).encode(),))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid a 40 ms delayed ACK
    server: _ReplayHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = urlsplit(self.path)
        incoming = IncomingRequest(
            method=self.command,
            path=target.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            query=target.query,
        )
        self._write(self.server.replayer.handle(incoming))

    def _write(self, response: ReplayResponse) -> None:
        self.send_response(response.status)
        for key, value in response.headers:
            self.send_header(key, value)
        if response.streamed:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in _chunked(response.chunks):
                self.wfile.write(chunk)
                self.wfile.flush()
        else:
            payload = b"".join(response.chunks)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the recorder reports errors
        pass


def _chunked(chunks: tuple[bytes, ...]) -> Iterator[bytes]:
    for chunk in chunks:
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
    yield b"0\r\n\r\n"


class _ReplayHTTPServer(QuietThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], replayer: CassetteReplayer) -> None:
        super().__init__(address, _Handler)
        self.replayer = replayer


class FakeOpenAIServer(BackgroundServer):
    """The replayer served over HTTP on loopback, in a background thread."""

    thread_name = "fake-openai"

    def __init__(self, replayer: CassetteReplayer, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.replayer = replayer

    def _make_server(self, address: tuple[str, int]) -> _ReplayHTTPServer:
        return _ReplayHTTPServer(address, self.replayer)

    @property
    def base_url(self) -> str:
        """Address to give an OpenAI client (without ``/v1``)."""
        return self.url

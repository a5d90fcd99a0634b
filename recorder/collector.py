"""An in-memory OTLP/HTTP collector for traces and logs.

Modelled on OpenTelemetry's ``InMemorySpanExporter``: items sit in a deque
behind a lock, ``spans()`` returns a tuple copy, ``clear()`` empties it, and
``wait_for`` returns what it found (or ``None``) rather than raising. Each
span or log record keeps the resource and instrumentation scope it was
exported with. The HTTP side follows the OTLP/HTTP specification (binary
protobuf and JSON, gzip/deflate, size limits, the error answers); the body
rules themselves are in ``recorder.otlp_decoding``.
"""

from __future__ import annotations

import collections
import dataclasses
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Callable, Generic, TypeVar
from urllib.parse import urlsplit

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.loopback import BackgroundServer, QuietThreadingHTTPServer
from testopeninference.recorder.otlp_decoding import (
    JSON,
    PROTOBUF,
    RequestError,
    body_length,
    content_coding,
    decode,
    encode,
    media_type,
    read_body,
    status,
)

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 30.0
LINGER_SECONDS = 2.0  # how long a refused client may go on sending before we close on it

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class CollectedSpan:
    resource: Resource
    scope: InstrumentationScope
    span: Span


@dataclasses.dataclass(frozen=True)
class CollectedLogRecord:
    resource: Resource
    scope: InstrumentationScope
    log_record: LogRecord


@dataclasses.dataclass(frozen=True)
class _Signal:
    request: type[Message]
    response: type[Message]


_SIGNALS = {
    TRACES_PATH: _Signal(ExportTraceServiceRequest, ExportTraceServiceResponse),
    LOGS_PATH: _Signal(ExportLogsServiceRequest, ExportLogsServiceResponse),
}


class _Handler(BaseHTTPRequestHandler):
    """One connection: POSTed exports to the OTLP paths, refusals worded as OTLP/HTTP asks."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid a 40 ms delayed ACK
    server: _CollectorHTTPServer

    def setup(self) -> None:
        self.timeout = self.server.read_timeout  # a client that stalls mid-request cannot hold a thread forever
        super().setup()

    def do_POST(self) -> None:
        try:
            signal = self._route()
            body = read_body(self.rfile, self.headers, self.server.max_body_bytes)
            request = decode(body, self._media(), signal.request)
        except RequestError as error:
            return self._refuse(error)
        except TimeoutError:
            return self._refuse(RequestError(408, f"no data for {self.timeout} s: the body is incomplete"))
        self.server.collector.add(request)
        self._send(200, encode(signal.response(), self._media()), self._media())

    def _refuse_method(self) -> None:
        """Any method but POST: ``_route`` answers 405 on an OTLP path and 404 elsewhere."""
        try:
            self._route()
        except RequestError as error:
            self._refuse(error)

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def handle_expect_100(self) -> bool:
        """Refuse before the body is sent when the headers already tell (curl asks first for large bodies)."""
        try:
            self._route()
        except RequestError as error:
            self._refuse(error)
            return False
        return super().handle_expect_100()

    def _route(self) -> _Signal:
        """What this request exports, or the RequestError its headers alone deserve."""
        path = urlsplit(self.path).path
        signal = _SIGNALS.get(path)
        if signal is None:
            raise RequestError(404, f"unknown path {path!r}; OTLP/HTTP exports go to {' or '.join(_SIGNALS)}")
        if self.command != "POST":
            raise RequestError(405, f"{self.command} is not allowed on {path}; export with POST")
        if self._media() not in (PROTOBUF, JSON):
            content_type = self.headers["Content-Type"]
            raise RequestError(415, f"unsupported Content-Type {content_type!r}; send {PROTOBUF} or {JSON}")
        content_coding(self.headers["Content-Encoding"])
        if (body_length(self.headers) or 0) > self.server.max_body_bytes:
            raise RequestError(413, f"the body is over the {self.server.max_body_bytes}-byte limit")
        return signal

    def _media(self) -> str:
        return media_type(self.headers["Content-Type"])

    def _refuse(self, error: RequestError) -> None:
        """A Status answer, then close: an unread body must not pass for the next request."""
        media = JSON if self._media() == JSON else PROTOBUF
        headers = {"Connection": "close"}
        if error.status == 405:
            headers["Allow"] = "POST"
        self._send(error.status, encode(status(error.status, str(error)), media), media, headers)
        self._linger()

    def _send(self, code: int, payload: bytes, media: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _linger(self) -> None:
        """Drop what the client still sends for a moment before closing, so it reads our answer, not a reset."""
        deadline = time.monotonic() + min(LINGER_SECONDS, self.server.read_timeout)
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                if not self.rfile.read1(65536):
                    break
        except OSError:  # includes the timeout that ends a client which neither stops nor hangs up
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


class _CollectorHTTPServer(QuietThreadingHTTPServer):
    def __init__(
        self, address: tuple[str, int], collector: InMemoryOTLPCollector, max_body_bytes: int, read_timeout: float
    ) -> None:
        self.collector = collector
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        super().__init__(address, _Handler)


class _Shelf(Generic[T]):
    """One signal's received items; every shelf shares the collector's condition, hence one lock."""

    def __init__(self, changed: threading.Condition) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._changed = changed

    def extend(self, items: list[T]) -> None:
        with self._changed:
            self._items.extend(items)
            self._changed.notify_all()

    def snapshot(self) -> tuple[T, ...]:
        with self._changed:
            return tuple(self._items)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()

    def wait_for(self, predicate: Callable[[T], bool], timeout: float) -> list[T] | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [item for item in self._items if predicate(item)]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found or None
                self._changed.wait(remaining)

    def remove(self, predicate: Callable[[T], bool]) -> None:
        with self._changed:
            kept = [item for item in self._items if not predicate(item)]
            self._items.clear()
            self._items.extend(kept)


def _spans_of(request: ExportTraceServiceRequest) -> list[CollectedSpan]:
    return [
        CollectedSpan(resource_spans.resource, scope_spans.scope, span)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def _log_records_of(request: ExportLogsServiceRequest) -> list[CollectedLogRecord]:
    return [
        CollectedLogRecord(resource_logs.resource, scope_logs.scope, log_record)
        for resource_logs in request.resource_logs
        for scope_logs in resource_logs.scope_logs
        for log_record in scope_logs.log_records
    ]


class InMemoryOTLPCollector(BackgroundServer):
    """Receives OTLP/HTTP trace and log exports on loopback and keeps the spans and log records."""

    thread_name = "otlp-collector"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        """``max_body_bytes`` bounds a body both as sent and inflated; ``read_timeout`` bounds each socket read."""
        super().__init__(host, port)
        self._max_body_bytes = max_body_bytes
        self._read_timeout = read_timeout
        changed = threading.Condition()
        self._spans: _Shelf[CollectedSpan] = _Shelf(changed)
        self._log_records: _Shelf[CollectedLogRecord] = _Shelf(changed)

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (exporters append ``/v1/traces`` or ``/v1/logs``)."""
        return self.url

    def add(self, request: ExportTraceServiceRequest | ExportLogsServiceRequest) -> None:
        """Keep what an export request carries (the HTTP handler calls this; tests may as well)."""
        if isinstance(request, ExportLogsServiceRequest):
            self._log_records.extend(_log_records_of(request))
        else:
            self._spans.extend(_spans_of(request))

    def spans(self) -> tuple[CollectedSpan, ...]:
        return self._spans.snapshot()

    def log_records(self) -> tuple[CollectedLogRecord, ...]:
        return self._log_records.snapshot()

    def clear(self) -> None:
        """Forget every span and log record."""
        self._spans.clear()
        self._log_records.clear()

    def wait_for(self, predicate: Callable[[CollectedSpan], bool], timeout: float) -> list[CollectedSpan] | None:
        """The spans matching ``predicate`` once there is at least one, or ``None`` after ``timeout`` s."""
        return self._spans.wait_for(predicate, timeout)

    def wait_for_log_records(
        self, predicate: Callable[[CollectedLogRecord], bool], timeout: float
    ) -> list[CollectedLogRecord] | None:
        """The log records matching ``predicate`` once there is at least one, or ``None`` after ``timeout`` s."""
        return self._log_records.wait_for(predicate, timeout)

    def remove(self, predicate: Callable[[CollectedSpan], bool]) -> None:
        """Drop the spans matching ``predicate`` (those a finished recording used)."""
        self._spans.remove(predicate)

    def remove_log_records(self, predicate: Callable[[CollectedLogRecord], bool]) -> None:
        """Drop the log records matching ``predicate``."""
        self._log_records.remove(predicate)

    def _make_server(self, address: tuple[str, int]) -> _CollectorHTTPServer:
        return _CollectorHTTPServer(address, self, self._max_body_bytes, self._read_timeout)

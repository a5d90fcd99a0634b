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
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

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

from testopeninference.recorder.loopback import BackgroundServer, ConnectionLimits, Scope, header, receive_body
from testopeninference.errors import ClientGoneError, RequestError
from testopeninference.recorder.otlp_decoding import (
    JSON,
    PROTOBUF,
    Inflater,
    content_coding,
    decode,
    encode,
    log_records_of,
    media_type,
    spans_of,
    status,
)

if TYPE_CHECKING:
    from testopeninference.recorder.grpc_receiver import OTLPGrpcReceiver

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_SPANS = 100_000

T = TypeVar("T")
_Collector = TypeVar("_Collector", bound="InMemoryOTLPCollector")


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


def _collected_span(resource: Resource, scope: InstrumentationScope, span: Span) -> CollectedSpan:
    """``CollectedSpan(resource, scope, span)`` at half the cost, made once per span received: the same
    object, its fields written straight into its ``__dict__`` rather than by three ``object.__setattr__``."""
    item = _new(CollectedSpan)
    fields = item.__dict__
    fields["resource"] = resource
    fields["scope"] = scope
    fields["span"] = span
    return item


def _collected_log_record(resource: Resource, scope: InstrumentationScope, record: LogRecord) -> CollectedLogRecord:
    """``CollectedLogRecord(resource, scope, record)``, made as ``_collected_span`` makes a span."""
    item = _new(CollectedLogRecord)
    fields = item.__dict__
    fields["resource"] = resource
    fields["scope"] = scope
    fields["log_record"] = record
    return item


_new = object.__new__


@dataclasses.dataclass(frozen=True)
class _Signal:
    request: type[ExportTraceServiceRequest] | type[ExportLogsServiceRequest]
    response: type[Message]


_SIGNALS = {
    TRACES_PATH: _Signal(ExportTraceServiceRequest, ExportTraceServiceResponse),
    LOGS_PATH: _Signal(ExportLogsServiceRequest, ExportLogsServiceResponse),
}


class _CollectorApp:
    """The ASGI side: route, read and inflate the body as it arrives, decode, keep; refusals as OTLP/HTTP asks."""

    def __init__(self, collector: InMemoryOTLPCollector, max_body_bytes: int) -> None:
        self.collector = collector
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        media = media_type(header(scope, b"content-type"))
        try:
            signal = self._route(scope, media)
            inflater = Inflater(content_coding(header(scope, b"content-encoding")), self.max_body_bytes)
            await receive_body(scope, receive, self.max_body_bytes, inflater.feed)
            request = decode(inflater.finish(), media, signal.request)
            self.collector.keep(request, check_ids=media == PROTOBUF)  # OTLP/JSON ids were checked as read from hex
        except RequestError as error:
            return await self._refuse(send, error, media)
        except ClientGoneError:
            return
        await _answer(send, 200, encode(signal.response(), media), media)

    def _route(self, scope: Scope, media: str) -> _Signal:
        """What this request exports, or the RequestError its headers alone deserve (before any body is read)."""
        path = scope["path"]
        signal = _SIGNALS.get(path)
        if signal is None:
            raise RequestError(404, f"unknown path {path!r}; OTLP/HTTP exports go to {' or '.join(_SIGNALS)}")
        if scope["method"] != "POST":
            raise RequestError(405, f"{scope['method']} is not allowed on {path}; export with POST")
        if media not in (PROTOBUF, JSON):
            content_type = header(scope, b"content-type")
            raise RequestError(415, f"unsupported Content-Type {content_type!r}; send {PROTOBUF} or {JSON}")
        return signal

    async def _refuse(self, send: Any, error: RequestError, media: str) -> None:
        """A Status answer, then close: a body we did not read must not pass for the next request."""
        media = JSON if media == JSON else PROTOBUF
        headers = [(b"connection", b"close")] + ([(b"allow", b"POST")] if error.status == 405 else [])
        await _answer(send, error.status, encode(status(error.status, str(error)), media), media, headers)


async def _answer(send: Any, code: int, payload: bytes, media: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    head = [(b"content-type", media.encode()), (b"content-length", str(len(payload)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": code, "headers": head})
    await send({"type": "http.response.body", "body": payload})


def otlp_error_body(http_status: int, message: str, request_type: str = "") -> tuple[str, bytes]:
    """A refusal made below the app: a ``google.rpc.Status``, in JSON for JSON requests, protobuf otherwise."""
    media = JSON if media_type(request_type) == JSON else PROTOBUF
    return media, encode(status(http_status, message), media)


class _Shelf(Generic[T]):
    """One signal's received items; every shelf shares the collector's condition, hence one lock."""

    def __init__(self, changed: threading.Condition, max_items: int) -> None:
        self._items: collections.deque[T] = collections.deque(maxlen=max_items)
        self._max_items = max_items
        self._changed = changed
        self.dropped = 0  # the oldest items pushed out by the bound

    def extend(self, items: list[T]) -> None:
        """Add one batch and wake the waiters once; past the bound the oldest items go, counted."""
        with self._changed:
            self.dropped += max(0, len(self._items) + len(items) - self._max_items)
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


class InMemoryOTLPCollector(BackgroundServer):
    """Receives OTLP/HTTP trace and log exports on loopback and keeps the spans and log records."""

    thread_name = "otlp-collector"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_spans: int = DEFAULT_MAX_SPANS,
        limits: ConnectionLimits | None = None,
        read_timeout: float | None = None,
        grpc_port: int | None = None,
    ) -> None:
        """``max_body_bytes`` bounds a body both as sent and inflated; ``max_spans`` the spans (and, apart,
        the log records) kept, the oldest dropped first; ``read_timeout`` sets both header and body timeouts.
        ``grpc_port`` (0: a free one) also receives OTLP/gRPC, into the same store with the same limits;
        ``None`` leaves it off."""
        limits = limits or ConnectionLimits()
        if read_timeout is not None:
            limits = dataclasses.replace(limits, header_timeout=read_timeout, body_timeout=read_timeout)
        super().__init__(host, port, limits)
        self._max_body_bytes = max_body_bytes
        changed = threading.Condition()
        self._spans: _Shelf[CollectedSpan] = _Shelf(changed, max_spans)
        self._log_records: _Shelf[CollectedLogRecord] = _Shelf(changed, max_spans)
        self._grpc_port = grpc_port
        self._grpc: OTLPGrpcReceiver | None = None

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (exporters append ``/v1/traces`` or ``/v1/logs``)."""
        return self.url

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` of the OTLP/gRPC receiver, for the gRPC exporter's endpoint."""
        if self._grpc is None:
            raise RuntimeError("the collector's OTLP/gRPC receiver is off (start it with grpc_port=0 or a port)")
        return self._grpc.endpoint

    def start(self: _Collector) -> _Collector:
        """Serve OTLP/HTTP, and OTLP/gRPC when asked; an OSError (a taken port) leaves neither running."""
        super().start()
        if self._grpc_port is not None:
            from testopeninference.recorder.grpc_receiver import OTLPGrpcReceiver  # grpc loads only when used

            receiver = OTLPGrpcReceiver(
                self.keep, self._address[0], self._grpc_port,
                max_message_bytes=self._max_body_bytes, max_connections=self.limits.max_connections,
            )
            try:
                self._grpc = receiver.start()
            except BaseException:
                super().stop()
                raise
        return self

    def stop(self) -> None:
        """Stop the gRPC receiver (exports in flight finish), then the HTTP server."""
        if self._grpc is not None:
            self._grpc.stop()
            self._grpc = None
        super().stop()

    def add(self, request: ExportTraceServiceRequest | ExportLogsServiceRequest) -> None:
        """Keep what an export request carries, as it is (tests may call this; exports over HTTP are checked)."""
        self.keep(request, check_ids=False)

    def keep(self, request: ExportTraceServiceRequest | ExportLogsServiceRequest, check_ids: bool) -> None:
        """Keep what an export carries; with ``check_ids``, a RequestError (400) for an id of the wrong size
        comes first and nothing of the export is kept."""
        if isinstance(request, ExportLogsServiceRequest):
            self._log_records.extend(log_records_of(request, _collected_log_record, check_ids))
        else:
            self._spans.extend(spans_of(request, _collected_span, check_ids))

    def spans(self) -> tuple[CollectedSpan, ...]:
        return self._spans.snapshot()

    @property
    def dropped_spans(self) -> int:
        """How many spans the ``max_spans`` bound pushed out, oldest first, since the start."""
        return self._spans.dropped

    @property
    def dropped_log_records(self) -> int:
        return self._log_records.dropped

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

    def _app(self) -> _CollectorApp:
        return _CollectorApp(self, self._max_body_bytes)

    def _error_body(self, status: int, message: str, request_type: str = "") -> tuple[str, bytes]:
        return otlp_error_body(status, message, request_type)

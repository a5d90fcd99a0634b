"""An in-memory OTLP/HTTP collector for traces.

Modelled on OpenTelemetry's ``InMemorySpanExporter``: spans sit in a deque
behind a lock, ``spans()`` returns a tuple copy, ``clear()`` empties it, and
``wait_for`` returns what it found (or ``None``) rather than raising. Each
span keeps the resource and instrumentation scope it was exported with.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"


@dataclasses.dataclass(frozen=True)
class CollectedSpan:
    resource: Resource
    scope: InstrumentationScope
    span: Span


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid a 40 ms delayed ACK
    server: _CollectorHTTPServer

    def do_POST(self) -> None:
        if self.path.split("?")[0] != TRACES_PATH:
            return self._status(404, f"unknown path {self.path}; OTLP traces go to {TRACES_PATH}")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != PROTOBUF:
            return self._status(415, f"unsupported content type {content_type!r}; send {PROTOBUF}")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(self._decompress(body))
        except (DecodeError, OSError, zlib.error, EOFError) as error:
            return self._status(400, f"cannot decode the OTLP request: {error}")
        self.server.collector.add(request)
        self._send(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    def _decompress(self, body: bytes) -> bytes:
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        return body

    def _status(self, code: int, message: str) -> None:
        self._send(code, status_pb2.Status(code=3 if code == 400 else 2, message=message).SerializeToString())

    def _send(self, code: int, payload: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", PROTOBUF)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _CollectorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], collector: InMemoryOTLPCollector) -> None:
        super().__init__(address, _Handler)
        self.collector = collector


class InMemoryOTLPCollector:
    """Receives OTLP/HTTP protobuf trace exports on loopback and keeps the spans."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._spans: collections.deque[CollectedSpan] = collections.deque()
        self._changed = threading.Condition()
        self._server: _CollectorHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (exporters append ``/v1/traces``)."""
        assert self._server is not None, "collector not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self._changed:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self._spans.append(CollectedSpan(resource_spans.resource, scope_spans.scope, span))
            self._changed.notify_all()

    def spans(self) -> tuple[CollectedSpan, ...]:
        with self._changed:
            return tuple(self._spans)

    def clear(self) -> None:
        with self._changed:
            self._spans.clear()

    def wait_for(
        self, predicate: Callable[[CollectedSpan], bool], timeout: float
    ) -> list[CollectedSpan] | None:
        """The spans matching ``predicate`` once there is at least one, or ``None`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [item for item in self._spans if predicate(item)]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found or None
                self._changed.wait(remaining)

    def remove(self, predicate: Callable[[CollectedSpan], bool]) -> None:
        """Drop the spans matching ``predicate`` (those a finished recording used)."""
        with self._changed:
            kept = [item for item in self._spans if not predicate(item)]
            self._spans.clear()
            self._spans.extend(kept)

    def start(self) -> InMemoryOTLPCollector:
        self._server = _CollectorHTTPServer(self._address, self)
        threading.Thread(target=self._server.serve_forever, name="otlp-collector", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> InMemoryOTLPCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The collector's OTLP/gRPC side: TraceService/Export and LogsService/Export into the same store as OTLP/HTTP.

Gateways that export OTLP/gRPC only (the OpenTelemetry Collector's 4317 is a common default) reach the
in-memory collector without a collector in between. The rules are the HTTP side's: a message over the body
limit is refused (RESOURCE_EXHAUSTED, by gRPC itself), gzip is inflated by gRPC, undecodable bytes and ids of
the wrong size are INVALID_ARGUMENT with a message saying which, and a good export answers an empty response
(nothing rejected: the store drops its oldest items past its bound and counts them, as over HTTP). Requests
are read as raw bytes, so a decoding error is ours to word, never gRPC's. Only loopback is bound.
"""

from __future__ import annotations

import errno
from concurrent import futures
from typing import Any, Callable

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from testopeninference.errors import RequestError
from testopeninference.recorder.otlp_decoding import PROTOBUF, decode

GRACE_SECONDS = 1.0  # how long exports in flight may go on once stop() is called
WORKERS = 4  # threads answering exports; decoding holds the GIL, so more would only queue

Keep = Callable[[Any, bool], None]
"""``keep(request, check_ids)``: the collector's store, refusing bad ids with a ``RequestError``."""

_SERVICES = {
    "opentelemetry.proto.collector.trace.v1.TraceService": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "opentelemetry.proto.collector.logs.v1.LogsService": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}


class OTLPGrpcReceiver:
    """An OTLP/gRPC server on ``host:port`` (port 0: a free one) handing each export to ``keep``."""

    def __init__(
        self, keep: Keep, host: str = "127.0.0.1", port: int = 0, *, max_message_bytes: int, max_connections: int
    ) -> None:
        self._keep = keep
        self._address = f"{host}:{port}"
        self._host = host
        self._max_message_bytes = max_message_bytes
        self._max_connections = max_connections
        self._server: grpc.Server | None = None
        self._pool: futures.ThreadPoolExecutor | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        """``http://host:port``, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes it for the gRPC exporter."""
        if self._server is None:
            raise RuntimeError("the OTLP/gRPC receiver is not started")
        return f"http://{self._host}:{self.port}"

    def start(self) -> OTLPGrpcReceiver:
        """Bind (a taken port is an OSError here, as for the HTTP servers), then serve in gRPC's threads."""
        self._pool = futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="otlp-grpc")
        self._server = grpc.server(
            self._pool,
            handlers=[_handler(service, types, self._export) for service, types in _SERVICES.items()],
            maximum_concurrent_rpcs=self._max_connections,
            options=[
                ("grpc.max_receive_message_length", self._max_message_bytes),
                ("grpc.so_reuseport", 0),  # a port in use is an error, never shared with another server
            ],
        )
        try:
            self.port = self._server.add_insecure_port(self._address)
        except RuntimeError as error:
            self._discard()
            # gRPC says no more than "failed to bind"; a port in use is by far the likeliest cause
            raise OSError(errno.EADDRINUSE, f"cannot bind {self._address} ({error})", "OTLP/gRPC") from None
        self._server.start()
        return self

    def stop(self) -> None:
        """Refuse new exports, let those in flight finish (up to a second), then end every thread."""
        if self._server is None:
            return
        self._server.stop(GRACE_SECONDS).wait()
        self._discard()

    def _discard(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._server = self._pool = None

    def __enter__(self) -> OTLPGrpcReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _export(self, body: bytes, context: grpc.ServicerContext, types: tuple[type, type]) -> bytes:
        request_type, response_type = types
        try:
            self._keep(decode(body, PROTOBUF, request_type), True)
        except RequestError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return bytes(response_type().SerializeToString())


def _handler(service: str, types: tuple[type, type], export: Callable[..., bytes]) -> grpc.GenericRpcHandler:
    """``service/Export`` taking and giving raw bytes (no deserializer: decoding errors stay ours)."""
    method: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
        lambda body, context: export(body, context, types)
    )
    return grpc.method_handlers_generic_handler(service, {"Export": method})

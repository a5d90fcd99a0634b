"""The collector's OTLP/gRPC receiver: the real OpenTelemetry SDK gRPC exporters, and what a bad client sends."""

import gzip
import threading
import time

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from testopeninference.recorder.collector import InMemoryOTLPCollector

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


@pytest.fixture
def collector():
    with InMemoryOTLPCollector(grpc_port=0) as running:
        yield running


def export(collector, body: bytes, method: str = TRACE_EXPORT, **call_options) -> bytes:
    """One raw unary call with ``body`` as the request bytes; gRPC errors surface as ``grpc.RpcError``."""
    with grpc.insecure_channel(collector.grpc_endpoint.removeprefix("http://")) as channel:
        call = channel.unary_unary(method)
        return call(body, timeout=10, **call_options)


def spans_request(count: int, trace_id: bytes = b"\x01" * 16, span_id: bytes = b"\x02" * 8):
    request = trace_service_pb2.ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for i in range(count):
        scope_spans.spans.add(trace_id=trace_id, span_id=span_id, name=f"span {i}")
    return request


def test_the_sdk_grpc_exporters_deliver_spans_and_logs_gzipped_into_the_same_store(collector):
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True,
                                             compression=grpc.Compression.Gzip))
    )
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=collector.grpc_endpoint, insecure=True))
    )
    try:
        with tracer_provider.get_tracer("grpc-test").start_as_current_span("over grpc"):
            logger_provider.get_logger("grpc-test").emit(body="a record over grpc")
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()
    (span,) = collector.spans()
    assert (span.scope.name, span.span.name, len(span.span.trace_id)) == ("grpc-test", "over grpc", 16)
    (record,) = collector.log_records()
    assert record.log_record.body.string_value == "a record over grpc"
    assert record.log_record.trace_id == span.span.trace_id


def test_http_and_grpc_share_the_bound_on_spans_kept_and_its_count_of_dropped():
    with InMemoryOTLPCollector(grpc_port=0, max_spans=2) as collector:
        answer = export(collector, spans_request(3).SerializeToString())
        assert trace_service_pb2.ExportTraceServiceResponse.FromString(answer) == (
            trace_service_pb2.ExportTraceServiceResponse()
        )
        assert [item.span.name for item in collector.spans()] == ["span 1", "span 2"]
        assert collector.dropped_spans == 1


def test_garbage_bytes_are_invalid_argument_with_a_message(collector):
    with pytest.raises(grpc.RpcError) as refused:
        export(collector, b"\xff\xff\xff\xff not protobuf")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot decode the protobuf ExportTraceServiceRequest" in refused.value.details()
    assert collector.spans() == ()


@pytest.mark.parametrize(
    ("request_", "method", "message"),
    [
        (spans_request(1, trace_id=b"\x01" * 8), TRACE_EXPORT, "a Span's traceId has 8 bytes; it must have 16"),
        (spans_request(1, span_id=b"\x01" * 16), TRACE_EXPORT, "a Span's spanId has 16 bytes; it must have 8"),
        (
            logs_service_pb2.ExportLogsServiceRequest(
                resource_logs=[{"scope_logs": [{"log_records": [{"trace_id": b"\x01" * 3}]}]}]
            ),
            LOGS_EXPORT,
            "a LogRecord's traceId has 3 bytes; it must have 16",
        ),
    ],
)
def test_an_id_of_the_wrong_size_is_invalid_argument_and_nothing_is_kept(collector, request_, method, message):
    with pytest.raises(grpc.RpcError) as refused:
        export(collector, request_.SerializeToString(), method)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in refused.value.details()
    assert collector.spans() == () and collector.log_records() == ()


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip])
def test_a_message_over_the_body_limit_is_resource_exhausted_sent_or_inflated(compression):
    body = spans_request(1).SerializeToString() + b"\x0a\x00" * 5000  # empty resource_spans: 10 kB of padding
    with InMemoryOTLPCollector(grpc_port=0, max_body_bytes=4096) as collector:
        assert len(gzip.compress(body)) < 4096 < len(body)
        with pytest.raises(grpc.RpcError) as refused:
            export(collector, body, compression=compression)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert collector.spans() == ()


def test_the_receiver_is_off_unless_asked_for_and_binds_loopback():
    with InMemoryOTLPCollector() as http_only:
        with pytest.raises(RuntimeError, match="OTLP/gRPC receiver is off"):
            http_only.grpc_endpoint
    with InMemoryOTLPCollector(grpc_port=0) as collector:
        assert collector.grpc_endpoint.startswith("http://127.0.0.1:")


def test_a_taken_grpc_port_is_an_oserror_and_leaves_nothing_running(collector):
    taken = int(collector.grpc_endpoint.rsplit(":", 1)[1])
    second = InMemoryOTLPCollector(grpc_port=taken)
    with pytest.raises(OSError):
        second.start()
    with pytest.raises(RuntimeError):
        second.url  # the HTTP side was stopped again


def test_stopping_while_a_client_is_connected_ends_every_thread_and_the_client_sees_unavailable():
    before = set(threading.enumerate())
    collector = InMemoryOTLPCollector(grpc_port=0).start()
    channel = grpc.insecure_channel(collector.grpc_endpoint.removeprefix("http://"))
    call = channel.unary_unary(TRACE_EXPORT)
    call(spans_request(1).SerializeToString(), timeout=10)  # connected, and the connection kept
    collector.stop()
    with pytest.raises(grpc.RpcError) as refused:
        call(spans_request(1).SerializeToString(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {thread.name for thread in set(threading.enumerate()) - before} == set()

"""The collector's store (spans and log records) and the real OTLP exporters against it.

The HTTP conformance cases (encodings, compression, framing, limits, errors) are in
``test_collector_conformance.py``.
"""

import gzip
import threading

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from testopeninference.recorder.collector import CollectedLogRecord, InMemoryOTLPCollector
from testopeninference.recorder.session import belongs_to


def export_request(*spans: tuple[str, bytes, str]) -> trace_service_pb2.ExportTraceServiceRequest:
    """Spans given as (scope name, trace id, span name)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    for scope, trace_id, name in spans:
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name").value.string_value = "test"
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = scope
        scope_spans.spans.add(trace_id=trace_id, span_id=b"\x01" * 8, name=name)
    return request


def logs_request(*records: tuple[str, str]) -> logs_service_pb2.ExportLogsServiceRequest:
    """Log records given as (scope name, body)."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    for scope, body in records:
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.add(key="service.name").value.string_value = "test"
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = scope
        scope_logs.log_records.add().body.string_value = body
    return request


TRACE_A, TRACE_B = (1).to_bytes(16, "big"), (2).to_bytes(16, "big")
OI = "openinference.instrumentation.openai"


@pytest.fixture
def collector():
    with InMemoryOTLPCollector() as running:
        yield running


def post(collector, body: bytes, content_type="application/x-protobuf", path="/v1/traces", **headers):
    return httpx.post(
        f"{collector.endpoint}{path}", content=body, headers={"Content-Type": content_type, **headers}, timeout=5
    )


def service_name(resource) -> str:
    return next(attribute.value.string_value for attribute in resource.attributes if attribute.key == "service.name")


def test_accepts_protobuf_and_keeps_resource_and_scope(collector):
    response = post(collector, export_request((OI, TRACE_A, "ChatCompletion")).SerializeToString())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    (item,) = collector.spans()
    assert item.scope.name == OI and item.span.name == "ChatCompletion"
    assert item.resource.attributes[0].value.string_value == "test"


def test_accepts_protobuf_logs_and_keeps_resource_and_scope(collector):
    response = post(collector, logs_request(("app.logger", "hello")).SerializeToString(), path="/v1/logs")
    assert response.status_code == 200
    logs_service_pb2.ExportLogsServiceResponse.FromString(response.content)
    (item,) = collector.log_records()
    assert (item.scope.name, item.log_record.body.string_value, service_name(item.resource)) == (
        "app.logger",
        "hello",
        "test",
    )
    assert collector.spans() == ()


def test_accepts_gzip(collector):
    body = gzip.compress(export_request((OI, TRACE_A, "x")).SerializeToString())
    assert post(collector, body, **{"Content-Encoding": "gzip"}).status_code == 200
    assert len(collector.spans()) == 1


def test_garbage_gets_400_with_status(collector):
    response = post(collector, b"\xff\xff\xff garbage")
    assert response.status_code == 400
    assert "cannot decode" in status_pb2.Status.FromString(response.content).message
    assert collector.spans() == ()


def test_other_content_types_get_415_and_other_paths_404(collector):
    assert post(collector, b"{}", content_type="text/plain").status_code == 415
    assert httpx.post(f"{collector.endpoint}/v1/metrics", content=b"", timeout=5).status_code == 404


def test_span_selection_takes_only_this_requests_span_from_its_scope():
    collector = InMemoryOTLPCollector()  # not started: spans are added directly
    collector.add(export_request(("fastapi", TRACE_A, "POST /v1/chat/completions"), (OI, TRACE_A, "mine"), (OI, TRACE_B, "other")))
    found = collector.wait_for(belongs_to(1, OI), timeout=0.01)
    assert [item.span.name for item in found] == ["mine"]
    collector.remove(belongs_to(1))
    assert [item.span.name for item in collector.spans()] == ["other"]


def test_wait_for_returns_none_on_timeout():
    assert InMemoryOTLPCollector().wait_for(lambda item: True, timeout=0.01) is None


def test_log_records_are_kept_apart_from_spans_and_selected_like_them():
    collector = InMemoryOTLPCollector()
    collector.add(logs_request(("a", "first"), ("b", "second")))
    collector.add(export_request((OI, TRACE_A, "span")))

    def from_scope_a(item: CollectedLogRecord) -> bool:
        return item.scope.name == "a"

    assert [item.log_record.body.string_value for item in collector.wait_for_log_records(from_scope_a, 0.01)] == ["first"]
    assert collector.wait_for_log_records(lambda item: item.scope.name == "c", timeout=0.01) is None
    collector.remove_log_records(from_scope_a)
    assert [item.scope.name for item in collector.log_records()] == ["b"]
    assert len(collector.spans()) == 1
    collector.clear()
    assert collector.spans() == () and collector.log_records() == ()


def test_wait_for_log_records_wakes_when_a_record_arrives():
    collector = InMemoryOTLPCollector()
    arrival = threading.Timer(0.05, collector.add, [logs_request(("late", "arrives"))])
    arrival.start()
    found = collector.wait_for_log_records(lambda item: item.scope.name == "late", timeout=5)
    arrival.join()
    assert [item.log_record.body.string_value for item in found] == ["arrives"]


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_real_otlp_span_exporter_reaches_it(collector, compression):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=f"{collector.endpoint}/v1/traces",
        compression=Compression.Gzip if compression else Compression.NoCompression,
        timeout=5,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "span-exporter-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("unit-test", "1.2.3").start_span("hello").end()
    provider.shutdown()
    (item,) = collector.spans()
    assert (item.scope.name, item.scope.version, item.span.name) == ("unit-test", "1.2.3", "hello")
    assert service_name(item.resource) == "span-exporter-test"
    assert len(item.span.trace_id) == 16 and len(item.span.span_id) == 8


def test_real_otlp_log_exporter_reaches_it(collector):
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": "log-exporter-test"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{collector.endpoint}/v1/logs", timeout=5)))
    provider.get_logger("unit-test-logs", "0.1").emit(
        body="something happened", severity_number=SeverityNumber.WARN, attributes={"answer": 42}
    )
    provider.shutdown()
    (item,) = collector.log_records()
    assert (item.scope.name, item.scope.version) == ("unit-test-logs", "0.1")
    assert service_name(item.resource) == "log-exporter-test"
    record = item.log_record
    assert (record.body.string_value, record.severity_number) == ("something happened", SeverityNumber.WARN.value)
    assert [(attribute.key, attribute.value.int_value) for attribute in record.attributes] == [("answer", 42)]
    assert collector.spans() == ()

import gzip

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from recorder.collector import InMemoryOTLPCollector
from recorder.session import belongs_to


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


TRACE_A, TRACE_B = (1).to_bytes(16, "big"), (2).to_bytes(16, "big")
OI = "openinference.instrumentation.openai"


@pytest.fixture
def collector():
    with InMemoryOTLPCollector() as running:
        yield running


def post(collector, body: bytes, content_type="application/x-protobuf", **headers):
    return httpx.post(
        f"{collector.endpoint}/v1/traces", content=body, headers={"Content-Type": content_type, **headers}, timeout=5
    )


def test_accepts_protobuf_and_keeps_resource_and_scope(collector):
    response = post(collector, export_request((OI, TRACE_A, "ChatCompletion")).SerializeToString())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    (item,) = collector.spans()
    assert item.scope.name == OI and item.span.name == "ChatCompletion"
    assert item.resource.attributes[0].value.string_value == "test"


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


def test_real_otlp_exporter_reaches_it(collector):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.endpoint}/v1/traces")))
    provider.get_tracer("unit-test").start_span("hello").end()
    provider.shutdown()
    (item,) = collector.spans()
    assert (item.scope.name, item.span.name) == ("unit-test", "hello")


def test_span_selection_takes_only_this_requests_span_from_its_scope():
    collector = InMemoryOTLPCollector()  # not started: spans are added directly
    collector.add(export_request(("fastapi", TRACE_A, "POST /v1/chat/completions"), (OI, TRACE_A, "mine"), (OI, TRACE_B, "other")))
    found = collector.wait_for(belongs_to(1, OI), timeout=0.01)
    assert [item.span.name for item in found] == ["mine"]
    collector.remove(belongs_to(1))
    assert [item.span.name for item in collector.spans()] == ["other"]


def test_wait_for_returns_none_on_timeout():
    assert InMemoryOTLPCollector().wait_for(lambda item: True, timeout=0.01) is None

"""Every span ``llm_span`` picks is in the report of the test that picked it (pytester, a real pytest run)."""

from __future__ import annotations

import pytest

from tests.helpers import CASSETTES

PICKING_TESTS = """
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

@pytest.fixture(scope="session")
def gateway_tracer(otlp_collector_session):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=otlp_collector_session.endpoint + "/v1/traces")))
    yield provider.get_tracer("my.gateway")
    provider.shutdown()

def export_request(tracer):
    with tracer.start_as_current_span("POST /v1/chat/completions", kind=trace.SpanKind.SERVER) as server:
        with tracer.start_as_current_span("llm call") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
        return format(server.get_span_context().trace_id, "032x")

def test_picks_and_fails(gateway_tracer, otlp_collector_session):
    trace_id = export_request(gateway_tracer)
    otlp_collector_session.wait_for_spans(2, trace_id=trace_id)
    otlp_collector_session.llm_span(trace_id)
    otlp_collector_session.llm_span(trace_id, name="POST /v1/chat/completions")
    assert False, "the gateway's span differs"

def test_picks_nothing(otlp_collector_session):
    assert False, "no span picked here"
"""


def test_the_spans_a_failing_test_picked_are_in_its_report_and_only_in_its(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(CASSETTES))
    pytester.makepyfile(PICKING_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*_ test_picks_and_fails _*",
        "*AssertionError: the gateway's span differs*",
        "*- testopeninference -*",
        "trace *: picked 'llm call' scope=my.gateway kind=SPAN_KIND_INTERNAL by gen_ai.operation.name=chat; "
        "1 other span(s) of the trace received",
        "trace *: picked 'POST /v1/chat/completions' scope=my.gateway kind=SPAN_KIND_SERVER "
        "by name 'POST /v1/chat/completions'; 1 other span(s) of the trace received",
        "*_ test_picks_nothing _*",
    ])
    after = result.stdout.str().split("_ test_picks_nothing _")[1]
    assert "- testopeninference -" not in after

"""Selecting a gateway's spans by trace, and THE LLM span of a trace, from what a collector holds."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.errors import ConfigurationError, SpanSelectionError, SpanTimeoutError
from testopeninference.kit import OTLPCollector, SentTraces, UnexpectedReply
from testopeninference.recorder.collector import InMemoryOTLPCollector
from testopeninference.span_selection import on_pick

TRACE = "ab" * 16
OTHER = "cd" * 16


def _span(name: str, trace: str, span_id: str, parent: str = "", **attributes: str) -> Span:
    span = Span(name=name, trace_id=bytes.fromhex(trace), span_id=bytes.fromhex(span_id),
                parent_span_id=bytes.fromhex(parent))
    for key, value in attributes.items():
        span.attributes.add(key=key).value.string_value = value
    return span


def _collector(*spans: Span, sent: tuple[str, ...] = (TRACE,)) -> OTLPCollector:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    scope_spans.scope.name = "gateway"
    scope_spans.spans.extend(spans)
    collector = InMemoryOTLPCollector()
    collector.add(request)
    traces = SentTraces()
    for trace in sent:
        traces.add(trace)
    return OTLPCollector(collector, traces)


SERVER = _span("POST /openai/v1/chat/completions", TRACE, "01" * 8, "99" * 8)
ROUTE = _span("route", TRACE, "02" * 8, "01" * 8)
HEALTH = _span("GET /health", OTHER, "05" * 8)


@pytest.mark.parametrize("llm", [
    _span("ChatCompletion", TRACE, "03" * 8, "01" * 8, **{"openinference.span.kind": "LLM"}),
    _span("CreateEmbeddings", TRACE, "03" * 8, "01" * 8, **{"openinference.span.kind": "EMBEDDING"}),
    _span("chat gpt-4o-mini", TRACE, "03" * 8, "01" * 8, **{"gen_ai.operation.name": "chat"}),
])
def test_llm_span_is_picked_by_what_it_is_never_by_position(llm: Span):
    otlp = _collector(SERVER, llm, ROUTE, HEALTH)
    assert otlp.llm_span(TRACE, timeout=0.1).span == llm


def test_llm_span_by_name():
    otlp = _collector(SERVER, ROUTE)
    assert otlp.llm_span(TRACE, name="route", timeout=0.1).span == ROUTE


def test_several_candidates_are_an_error_listing_the_trace():
    first = _span("ChatCompletion", TRACE, "03" * 8, "01" * 8, **{"openinference.span.kind": "LLM"})
    second = _span("ChatCompletion", TRACE, "04" * 8, "01" * 8, **{"openinference.span.kind": "LLM"})
    otlp = _collector(SERVER, first, second, HEALTH)
    with pytest.raises(SpanSelectionError) as raised:
        otlp.llm_span(TRACE, timeout=0.1)
    assert str(raised.value) == (
        f"expected exactly one LLM, embedding or reranker span (openinference.span.kind in ['EMBEDDING', 'LLM', "
        f"'RERANKER'] or "
        f"gen_ai.operation.name set) in trace {TRACE}, found 2; the trace holds:\n"
        f"  'POST /openai/v1/chat/completions' kind=SPAN_KIND_UNSPECIFIED scope=gateway id={'01' * 8} "
        f"parent={'99' * 8}\n"
        f"  'ChatCompletion' kind=SPAN_KIND_UNSPECIFIED scope=gateway id={'03' * 8} parent={'01' * 8}\n"
        f"  'ChatCompletion' kind=SPAN_KIND_UNSPECIFIED scope=gateway id={'04' * 8} parent={'01' * 8}\n"
        "1 span(s) arrived outside the traces sent (kept apart): GET /health; pass name= to pick one by span name."
    )


def test_an_outer_span_copying_the_llm_attributes_gives_way_to_the_innermost():
    outer = _span("litellm_proxy_request", TRACE, "01" * 8, "99" * 8, **{"openinference.span.kind": "LLM"})
    inner = _span("litellm_request", TRACE, "03" * 8, "02" * 8, **{"openinference.span.kind": "LLM"})
    otlp = _collector(outer, ROUTE, inner, HEALTH)  # outer -> route -> inner: an ancestor through another span
    assert otlp.llm_span(TRACE, timeout=0.1).span == inner


def test_the_innermost_rule_follows_the_trace_not_the_order_spans_arrived_in():
    outer = _span("server", TRACE, "01" * 8, "", **{"gen_ai.operation.name": "chat"})
    inner = _span("chat", TRACE, "03" * 8, "01" * 8, **{"gen_ai.operation.name": "chat"})
    assert _collector(inner, outer).llm_span(TRACE, timeout=0.1).span == inner


def test_unrelated_candidates_beside_an_outer_one_are_still_an_error():
    outer = _span("server", TRACE, "01" * 8, "99" * 8, **{"openinference.span.kind": "LLM"})
    first = _span("ChatCompletion", TRACE, "03" * 8, "01" * 8, **{"openinference.span.kind": "LLM"})
    second = _span("ChatCompletion", TRACE, "04" * 8, "01" * 8, **{"openinference.span.kind": "LLM"})
    with pytest.raises(SpanSelectionError, match=r"found 2; the trace holds:\n  'server'"):
        _collector(outer, first, second).llm_span(TRACE, timeout=0.1)


def test_a_span_that_names_itself_as_its_parent_is_still_picked():
    looped = _span("ChatCompletion", TRACE, "03" * 8, "03" * 8, **{"openinference.span.kind": "LLM"})
    assert _collector(SERVER, looped).llm_span(TRACE, timeout=0.1).span == looped


def test_an_llm_span_of_another_trace_is_never_picked():
    stray = _span("ChatCompletion", OTHER, "06" * 8, **{"openinference.span.kind": "LLM"})
    otlp = _collector(SERVER, ROUTE, stray)
    with pytest.raises(SpanSelectionError, match="found none; the trace holds:"):
        otlp.llm_span(TRACE, timeout=0.1)
    assert [item.span for item in otlp.unrelated_spans()] == [stray]


class _NoWaiting(InMemoryOTLPCollector):
    def wait_for(self, *args: object, **kwargs: object) -> bool:
        raise AssertionError("llm_span waited for a span that cannot come")


def test_a_trace_whose_request_the_gateway_did_not_route_fails_at_once_naming_the_reply():
    otlp = OTLPCollector(_NoWaiting(), SentTraces())
    otlp.sent.note_reply(TRACE, UnexpectedReply(405, 200, "POST", "http://127.0.0.1:1/v1/chat/completions"))
    with pytest.raises(SpanSelectionError) as raised:
        otlp.llm_span(TRACE, timeout=600)
    assert str(raised.value).endswith(
        "the gateway answered 405 to POST http://127.0.0.1:1/v1/chat/completions (the cassette recorded 200); is "
        "path_prefix= (--path-prefix) the gateway's route?: fix the request first, then the spans.")


def test_another_unexpected_reply_is_named_after_the_wait():
    otlp = _collector(SERVER, ROUTE)
    otlp.sent.note_reply(TRACE, UnexpectedReply(502, 200, "POST", "http://127.0.0.1:1/openai/v1/chat/completions"))
    with pytest.raises(SpanSelectionError, match=r"(?s)found none; .*the gateway answered 502 to POST "
                                                 r"http://127.0.0.1:1/openai/v1/chat/completions \(the cassette "
                                                 r"recorded 200\): fix the request first"):
        otlp.llm_span(TRACE, timeout=0.1)


def test_wait_for_spans_selects_by_trace_and_reports_unrelated_spans_on_timeout():
    otlp = _collector(SERVER, ROUTE, HEALTH)
    assert [item.span for item in otlp.wait_for_spans(2, trace_id=TRACE, timeout=0.1)] == [SERVER, ROUTE]
    with otlp.collector, pytest.raises(SpanTimeoutError, match=r"got 2; .*1 span\(s\) arrived outside the traces "
                                                             r"sent \(kept apart\): GET /health"):
        otlp.wait_for_spans(3, trace_id=TRACE, timeout=0.1)  # the message names the endpoint: a running collector


def test_a_trace_asked_about_is_no_longer_unrelated():
    otlp = _collector(SERVER, HEALTH, sent=())
    assert len(otlp.unrelated_spans()) == 2
    otlp.wait_for_spans(1, trace_id=TRACE, timeout=0.1)
    assert [item.span for item in otlp.unrelated_spans()] == [HEALTH]


def test_a_bad_trace_id_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="trace id 'abc' is not 32 hex digits"):
        _collector().llm_span("abc")


@pytest.mark.parametrize(("name", "attributes", "how"), [
    (None, {"openinference.span.kind": "LLM"}, "by openinference.span.kind=LLM"),
    (None, {"gen_ai.operation.name": "chat"}, "by gen_ai.operation.name=chat"),
    ("route", {}, "by name 'route'"),
])
def test_each_pick_is_announced_saying_how_it_was_picked(name, attributes, how):
    picked = _span(name or "chat", TRACE, "03" * 8, "01" * 8, **attributes)
    picks = []
    stop = on_pick(picks.append)
    try:
        _collector(SERVER, picked).llm_span(TRACE, name=name, timeout=1)
    finally:
        stop()
    _collector(SERVER, picked).llm_span(TRACE, name=name, timeout=1)  # stopped: not announced
    (pick,) = picks
    assert pick.describe() == (f"trace {TRACE}: picked {picked.name!r} scope=gateway kind=SPAN_KIND_UNSPECIFIED "
                               f"{how}; 1 other span(s) of the trace received")


def test_a_reranker_span_is_the_llm_span_of_its_trace():
    rerank = _span("AsyncClientV2.rerank", TRACE, "05" * 8, "01" * 8, **{"openinference.span.kind": "RERANKER"})
    otlp = _collector(SERVER, rerank, HEALTH)
    assert otlp.llm_span(TRACE, timeout=0.1).span == rerank

"""The trace check: any descendant of the caller's span is accepted; a broken chain names its missing link."""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.trace_context import TraceParent, trace_problems

CALLER = TraceParent("ab" * 16, "aa" * 8)
UPSTREAM = {"traceparent": f"00-{'ab' * 16}-{'bb' * 8}-01"}


def _span(name: str, span_id: str, parent: str) -> Span:
    return Span(name=name, trace_id=bytes.fromhex(CALLER.trace_id), span_id=bytes.fromhex(span_id),
                parent_span_id=bytes.fromhex(parent))


SERVER = _span("POST /chat", "01" * 8, CALLER.span_id)
LLM = _span("ChatCompletion", "03" * 8, "01" * 8)


def test_a_direct_child_is_accepted_without_the_trace():
    assert trace_problems(CALLER, SERVER, UPSTREAM) == []


def test_a_grandchild_is_accepted_through_the_spans_of_the_trace():
    assert trace_problems(CALLER, LLM, UPSTREAM, [SERVER, LLM]) == []


def test_a_missing_link_is_named():
    assert trace_problems(CALLER, LLM, UPSTREAM) == [
        f"span 'ChatCompletion''s parent {'01' * 8} was not received in trace {CALLER.trace_id}, so the chain "
        f"'ChatCompletion' ({'03' * 8}) never reached the caller's span {CALLER.span_id}"
    ]


def test_a_chain_ending_at_a_root_is_named():
    root = _span("POST /chat", "01" * 8, "")
    assert trace_problems(CALLER, LLM, UPSTREAM, [root]) == [
        f"the gateway's span does not descend from the caller's span {CALLER.span_id}: the chain "
        f"'ChatCompletion' ({'03' * 8}) <- 'POST /chat' ({'01' * 8}) ends at a root span"
    ]


def test_a_loop_of_parent_ids_ends_the_walk():
    first, second = _span("a", "01" * 8, "02" * 8), _span("b", "02" * 8, "01" * 8)
    (problem,) = trace_problems(CALLER, first, UPSTREAM, [first, second])
    assert problem.endswith("form a loop")

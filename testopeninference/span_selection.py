"""Picking spans out of what a gateway exported: by trace, and THE LLM (or embedding) span of a trace.

A gateway exports several spans per request (its HTTP server span, routing
spans, the instrumentation's LLM span) and some outside any request (health
checks). A test selects by the trace it sent, then by what the span is: the
OpenInference span kind, or the GenAI conventions' ``gen_ai.operation.name``
(OpenLLMetry sets it too), never by position.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.errors import SpanSelectionError
from testopeninference.recorder.collector import CollectedSpan

SPAN_KIND_KEY = "openinference.span.kind"
LLM_SPAN_KINDS = frozenset({"LLM", "EMBEDDING", "RERANKER"})  # RERANKER: Cohere Rerank
GENAI_OPERATION_KEY = "gen_ai.operation.name"


def trace_id_of(span: Span) -> str:
    return span.trace_id.hex()


def in_trace(item: CollectedSpan, trace_id: str) -> bool:
    return item.span.trace_id.hex() == trace_id


def is_llm_span(span: Span) -> bool:
    """An OpenInference LLM, embedding or reranker span, or a span with a GenAI operation name."""
    for attribute in span.attributes:
        if attribute.key == SPAN_KIND_KEY and attribute.value.string_value in LLM_SPAN_KINDS:
            return True
        if attribute.key == GENAI_OPERATION_KEY and attribute.value.string_value:
            return True
    return False


def candidates(spans: Iterable[CollectedSpan], name: str | None = None) -> list[CollectedSpan]:
    """The spans that may be THE LLM span: those named ``name``, else those ``is_llm_span`` accepts."""
    return [item for item in spans if (item.span.name == name if name is not None else is_llm_span(item.span))]


def describe(spans: Sequence[CollectedSpan]) -> str:
    """One line per span: name, span kind, scope, id and parent, enough to see a trace's shape."""
    if not spans:
        return "  (no spans)"
    return "\n".join(
        f"  {item.span.name!r} kind={Span.SpanKind.Name(item.span.kind)} scope={item.scope.name or '(none)'} "
        f"id={item.span.span_id.hex()} parent={item.span.parent_span_id.hex() or '(root)'}"
        for item in spans
    )


def unrelated_line(unrelated: Sequence[CollectedSpan]) -> str:
    """How many spans arrived outside every sent trace, and their names (kept apart, never selected)."""
    if not unrelated:
        return "no spans arrived outside the traces sent"
    names = ", ".join(sorted({item.span.name for item in unrelated}))
    return f"{len(unrelated)} span(s) arrived outside the traces sent (kept apart): {names}"


def pick_one(trace_spans: Sequence[CollectedSpan], trace_id: str, name: str | None,
             unrelated: Sequence[CollectedSpan]) -> CollectedSpan:
    """Exactly one candidate of the trace, or ``SpanSelectionError`` listing the trace's spans."""
    found = candidates(trace_spans, name)
    if len(found) == 1:
        return found[0]
    what = f"span named {name!r}" if name is not None else (
        f"LLM, embedding or reranker span ({SPAN_KIND_KEY} in {sorted(LLM_SPAN_KINDS)} or {GENAI_OPERATION_KEY} set)")
    count = "no" if not found else f"{len(found)}"
    advice = ("pass name= to pick one by span name" if found else
              "check the gateway's instrumentation and its OTLP endpoint, or pass name= for a span of your own")
    raise SpanSelectionError(
        f"expected exactly one {what} in trace {trace_id}, found {count}; the trace holds:\n"
        f"{describe(trace_spans)}\n{unrelated_line(unrelated)}; {advice}."
    )

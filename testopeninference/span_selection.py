"""Picking spans out of what a gateway exported: by trace, and THE LLM (or embedding) span of a trace.

A gateway exports several spans per request (its HTTP server span, routing
spans, the instrumentation's LLM span) and some outside any request (health
checks). A test selects by the trace it sent, then by what the span is: the
OpenInference span kind, or the GenAI conventions' ``gen_ai.operation.name``
(OpenLLMetry sets it too), never by position. Where a gateway's outer span
copies the LLM span's attributes (LiteLLM's server span does), the innermost
candidate is THE LLM span: a candidate that is an ancestor of another is dropped.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.errors import SpanSelectionError

if TYPE_CHECKING:  # only annotations: the collector's server modules load with the collector, not here
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
    return _llm_marker(span) is not None


def _llm_marker(span: Span) -> str | None:
    """The attribute that makes ``span`` an LLM span, as ``key=value`` (None: it is not one)."""
    for attribute in span.attributes:
        if attribute.key == SPAN_KIND_KEY and attribute.value.string_value in LLM_SPAN_KINDS:
            return f"{SPAN_KIND_KEY}={attribute.value.string_value}"
        if attribute.key == GENAI_OPERATION_KEY and attribute.value.string_value:
            return f"{GENAI_OPERATION_KEY}={attribute.value.string_value}"
    return None


def candidates(spans: Iterable[CollectedSpan], name: str | None = None) -> list[CollectedSpan]:
    """The spans that may be THE LLM span: those named ``name``, else those ``is_llm_span`` accepts."""
    return [item for item in spans if (item.span.name == name if name is not None else is_llm_span(item.span))]


def innermost(found: Sequence[CollectedSpan], trace_spans: Sequence[CollectedSpan]) -> list[CollectedSpan]:
    """``found`` without the candidates that are an ancestor of another candidate (through any span of the
    trace), so an outer span copying the LLM span's attributes never competes with it."""
    parent_of = {item.span.span_id: item.span.parent_span_id for item in trace_spans}
    ancestors: set[bytes] = set()
    for item in found:
        ancestors |= _ancestors(item.span, parent_of) - {item.span.span_id}  # a span its own parent: no ancestor
    return [item for item in found if item.span.span_id not in ancestors]


def _ancestors(span: Span, parent_of: dict[bytes, bytes]) -> set[bytes]:
    """The span ids above ``span``, as far as the trace's spans link up (a cycle ends the walk)."""
    seen: set[bytes] = set()
    parent = span.parent_span_id
    while parent and parent not in seen:
        seen.add(parent)
        parent = parent_of.get(parent, b"")
    return seen


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
             unrelated: Sequence[CollectedSpan], reply: str = "") -> CollectedSpan:
    """Exactly one candidate of the trace once ancestors of other candidates are dropped (``innermost``), or
    ``SpanSelectionError`` listing the trace's spans; ``reply`` (an unexpected reply of the gateway in this
    trace, described) is then the likely cause, said first."""
    found = innermost(candidates(trace_spans, name), trace_spans)
    if len(found) == 1:
        return found[0]
    what = f"span named {name!r}" if name is not None else (
        f"LLM, embedding or reranker span ({SPAN_KIND_KEY} in {sorted(LLM_SPAN_KINDS)} or {GENAI_OPERATION_KEY} set)")
    count = "none" if not found else f"{len(found)}"
    advice = ("pass name= to pick one by span name" if found else
              "check the gateway's instrumentation and its OTLP endpoint, or pass name= for a span of your own")
    if reply and not found:
        advice = f"{reply}: fix the request first, then the spans"
    raise SpanSelectionError(
        f"expected exactly one {what} in trace {trace_id}, found {count}; the trace holds:\n"
        f"{describe(trace_spans)}\n{unrelated_line(unrelated)}; {advice}."
    )


@dataclasses.dataclass(frozen=True)
class SpanPick:
    """One span ``llm_span`` picked, and how: shown in the pytest report of the test that picked it."""

    trace_id: str
    picked: CollectedSpan
    how: str  # "by openinference.span.kind=LLM", "by name 'route'"
    others: int  # the other spans of the trace received when it was picked

    def describe(self) -> str:
        span = self.picked.span
        return (f"trace {self.trace_id}: picked {span.name!r} scope={self.picked.scope.name or '(none)'} "
                f"kind={Span.SpanKind.Name(span.kind)} {self.how}; {self.others} other span(s) of the trace received")


def pick_of(trace_spans: Sequence[CollectedSpan], picked: CollectedSpan, trace_id: str, name: str | None) -> SpanPick:
    """What ``pick_one`` chose, described for the report."""
    how = f"by name {name!r}" if name is not None else f"by {_llm_marker(picked.span)}"
    return SpanPick(trace_id, picked, how, len(trace_spans) - 1)


_pick_listeners: list[Callable[[SpanPick], None]] = []  # the pytest plugin's report of picked spans
_pick_listeners_lock = threading.Lock()


def on_pick(listener: Callable[[SpanPick], None]) -> Callable[[], None]:
    """Call ``listener`` with each span picked in this process; returns the function that stops it."""
    with _pick_listeners_lock:
        _pick_listeners.append(listener)

    def stop() -> None:
        with _pick_listeners_lock:
            if listener in _pick_listeners:
                _pick_listeners.remove(listener)

    return stop


def announce_pick(pick: SpanPick) -> None:
    with _pick_listeners_lock:
        listeners = list(_pick_listeners)
    for listener in listeners:
        listener(pick)

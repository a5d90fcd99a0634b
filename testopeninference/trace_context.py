"""Checking that a gateway keeps one W3C trace from its caller to its backend.

A test sends its own ``traceparent`` to the gateway; the gateway's span must
belong to that trace and descend from the caller's span (directly, or through
the gateway's own spans, such as its HTTP server span: the chain of parent ids
is walked through the spans received for that trace), and the request the
gateway sent upstream (as the fake OpenAI server received it) must carry a
``traceparent`` of the same trace.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from typing import Any, Iterable, Mapping

from testopeninference.errors import TracePropagationError
from testopeninference.span_input import as_span

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclasses.dataclass(frozen=True)
class TraceParent:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


def new_traceparent() -> TraceParent:
    """A fresh caller context to send to a gateway (``.header()`` is the header value)."""
    return TraceParent(secrets.token_hex(16), secrets.token_hex(8))


def parse_traceparent(value: str) -> TraceParent | None:
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match.group(2) == "0" * 32 or match.group(3) == "0" * 16:
        return None
    return TraceParent(match.group(2), match.group(3))


def trace_problems(caller: TraceParent, gateway_span: Any, upstream_headers: Mapping[str, str],
                   trace_spans: Iterable[Any] = ()) -> list[str]:
    """Each way the trace was broken; empty when it was kept.

    ``trace_spans`` are the other spans received in the caller's trace (e.g. ``otlp_collector.trace(id)``):
    the gateway's span may descend from the caller's span through them. Without them it must be a child.
    """
    span = as_span(gateway_span)
    problems = []
    if span.trace_id.hex() != caller.trace_id:
        problems.append(f"the gateway's span is in trace {span.trace_id.hex() or '(none)'}, "
                        f"not the caller's trace {caller.trace_id}")
    else:
        broken = _broken_link(caller, span, [as_span(item) for item in trace_spans])
        if broken:
            problems.append(broken)
    headers = {key.lower(): value for key, value in upstream_headers.items()}
    upstream = parse_traceparent(headers.get("traceparent", ""))
    if upstream is None:
        problems.append("the request the gateway sent upstream carries no valid traceparent header")
    elif upstream.trace_id != caller.trace_id:
        problems.append(f"the upstream request's traceparent is in trace {upstream.trace_id}, "
                        f"not the caller's trace {caller.trace_id}")
    return problems


def _broken_link(caller: TraceParent, span: Any, trace_spans: list[Any]) -> str:
    """Walk parent ids from ``span`` up to the caller's span; say which link is missing, or ""."""
    by_id = {item.span_id.hex(): item for item in trace_spans if item.trace_id.hex() == caller.trace_id}
    chain, current = [span], span
    while current.parent_span_id.hex() != caller.span_id:
        parent = current.parent_span_id.hex()
        reached = " <- ".join(f"{item.name!r} ({item.span_id.hex()})" for item in chain)
        if not parent:
            return (f"the gateway's span does not descend from the caller's span {caller.span_id}: "
                    f"the chain {reached} ends at a root span")
        if parent not in by_id:
            return (f"span {current.name!r}'s parent {parent} was not received in trace {caller.trace_id}, "
                    f"so the chain {reached} never reached the caller's span {caller.span_id}")
        current = by_id[parent]
        if current in chain:
            return f"the parent ids of the chain {reached} form a loop"
        chain.append(current)
    return ""


def assert_trace_propagated(caller: TraceParent, gateway_span: Any, upstream_headers: Mapping[str, str],
                            trace_spans: Iterable[Any] = ()) -> None:
    """Raise ``TracePropagationError`` naming every break in the trace."""
    problems = trace_problems(caller, gateway_span, upstream_headers, trace_spans)
    if problems:
        raise TracePropagationError("trace context was not propagated:\n" + "\n".join(f"  {p}" for p in problems))

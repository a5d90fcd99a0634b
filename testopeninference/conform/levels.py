"""How strictly ``conform`` scores a span: one function per level, from the comparison to the findings.

- ``reference`` (default): the golden's lenient rules, every difference counts;
- ``subset``: attributes the gateway adds are ignored (``unexpected`` keys are no difference);
- ``spec``: the span must be valid OpenInference for its kind, whatever the golden chose
  (``testopeninference.openinference_spec.validate_openinference``).
"""

from __future__ import annotations

import re
from typing import Callable

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.compare import Finding, SpanComparison
from testopeninference.errors import ConformUsageError
from testopeninference.openinference_spec import validate_openinference

Level = Callable[[SpanComparison, Span], list[Finding]]
_LEADING_KEY = re.compile(r"^([\w.\-*]+)(?::| \()")  # validate_openinference writes "<key>: <problem>"


def reference(comparison: SpanComparison, span: Span) -> list[Finding]:
    return list(comparison.findings)


def subset(comparison: SpanComparison, span: Span) -> list[Finding]:
    return [found for found in comparison.findings if found.kind != "unexpected"]


def spec(comparison: SpanComparison, span: Span) -> list[Finding]:
    """The validator's problems as findings of kind ``invalid``, keyed by the key each problem starts with."""
    return [Finding(_key_of(problem), "invalid", None, None, problem) for problem in validate_openinference(span)]


def _key_of(problem: str) -> str:
    found = _LEADING_KEY.match(problem)
    return found.group(1) if found else "(spec)"


LEVELS: dict[str, Level] = {"reference": reference, "subset": subset, "spec": spec}


def get_level(name: str) -> Level:
    """The level's function, or a usage error naming the levels there are."""
    if name not in LEVELS:
        raise ConformUsageError(f"unknown level {name!r}; use one of: {', '.join(LEVELS)}.")
    return LEVELS[name]

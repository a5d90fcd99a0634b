"""How strictly ``conform`` scores a span: one function per level, from the comparison to the findings.

- ``reference`` (default): the golden's lenient rules, every difference counts;
- ``subset``: attributes the gateway adds are ignored (``unexpected`` keys are no difference);
- ``spec``: the span must be valid OpenInference for its kind, whatever the golden chose
  (``testopeninference.openinference_spec.validate_openinference``).
"""

from __future__ import annotations

import importlib
import re
from typing import Callable

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.compare import Finding, SpanComparison
from testopeninference.errors import ConformUsageError

Level = Callable[[SpanComparison, Span], list[Finding]]
SPEC_MODULE = "testopeninference.openinference_spec"
_QUOTED_KEY = re.compile(r"'([\w.\-*]+)'")


def reference(comparison: SpanComparison, span: Span) -> list[Finding]:
    return list(comparison.findings)


def subset(comparison: SpanComparison, span: Span) -> list[Finding]:
    return [found for found in comparison.findings if found.kind != "unexpected"]


def spec(comparison: SpanComparison, span: Span) -> list[Finding]:
    """The validator's problems as findings of kind ``invalid``, keyed by the first quoted key named."""
    validate = _spec_validator()
    return [Finding(_key_of(problem), "invalid", None, None, problem) for problem in validate(span)]


def _key_of(problem: str) -> str:
    found = _QUOTED_KEY.search(problem)
    return found.group(1) if found else "(spec)"


def _spec_validator() -> Callable[[Span], list[str]]:
    try:
        module = importlib.import_module(SPEC_MODULE)
    except ModuleNotFoundError as error:
        if error.name != SPEC_MODULE:
            raise
        raise ConformUsageError(
            "--level spec is not available yet in this version (it needs "
            f"{SPEC_MODULE}.validate_openinference); use --level reference or subset.") from None
    validate: Callable[[Span], list[str]] = module.validate_openinference
    return validate


LEVELS: dict[str, Level] = {"reference": reference, "subset": subset, "spec": spec}


def get_level(name: str) -> Level:
    """The level's function; ``spec`` is checked for its validator at once, so a run never starts without it."""
    if name not in LEVELS:
        raise ConformUsageError(f"unknown level {name!r}; use one of: {', '.join(LEVELS)}.")
    if name == "spec":
        _spec_validator()
    return LEVELS[name]

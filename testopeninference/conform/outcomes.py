"""What scoring a gateway found: one result per cassette, and a tally per attribute key.

A cassette's outcome is, in this order of precedence: ``upstream drift`` (the
fake server refused the gateway's request: the gateway changed it), ``gateway
error`` (the gateway answered another status than the cassette recorded),
``no span`` (no LLM span in the cassette's trace), ``differs`` (the span
differs from the golden), ``invalid`` (at the ``spec`` level: the span is not
valid OpenInference) or ``match``. A difference listed in a baseline is
``accepted``: it does not fail the cassette.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence

from testopeninference.compare import Finding


class Outcome(str, enum.Enum):
    MATCH = "match"
    DIFFERS = "differs"
    UPSTREAM_DRIFT = "upstream drift"
    NO_SPAN = "no span"
    GATEWAY_ERROR = "gateway error"
    INVALID = "invalid"  # the spec level's outcome for a span with problems


COMPARED = frozenset({Outcome.MATCH, Outcome.DIFFERS, Outcome.INVALID})
"""Outcomes of a span compared (or validated): their findings are per key, not one whole-cassette line."""


OUTCOME_KEY = "(outcome)"
"""The baseline key of a whole-cassette outcome (no span, gateway error, upstream drift)."""

KINDS = ("missing", "unexpected", "different", "invalid")  # invalid: the spec level's problems


@dataclasses.dataclass(frozen=True)
class CassetteResult:
    """One cassette's score: ``findings`` are the differences (or, for an outcome without a span comparison,
    one finding keyed ``(outcome)``); ``accepted`` those the baseline lists; ``detail`` the lines quoted."""

    cassette: str
    endpoint: str
    outcome: Outcome
    findings: tuple[Finding, ...] = ()
    accepted: tuple[Finding, ...] = ()
    detail: str = ""  # the refusal, the gateway's reply, or the spans that did arrive
    trace_id: str = ""
    seconds: float = 0.0
    shared: tuple[str, ...] = ()  # spec problems the reference golden has too: not counted (--strict-spec)

    @property
    def failing(self) -> tuple[Finding, ...]:
        """The findings not in the baseline: any of them fails the cassette."""
        return tuple(found for found in self.findings if found not in self.accepted)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.MATCH or not self.failing

    def with_accepted(self, accepted: Iterable[Finding]) -> CassetteResult:
        return dataclasses.replace(self, accepted=tuple(accepted))


def outcome_finding(outcome: Outcome, detail: str) -> Finding:
    """The finding standing for a whole-cassette outcome, so baselines and reports treat it like the others."""
    first = detail.splitlines()[0] if detail else ""
    return Finding(OUTCOME_KEY, outcome.value, None, None, f"{outcome.value}: {first}")


@dataclasses.dataclass(frozen=True)
class KeyTally:
    """How many cassettes differ on one key, by kind (a cassette counts once per kind)."""

    key: str
    missing: int = 0
    unexpected: int = 0
    different: int = 0
    invalid: int = 0

    @property
    def total(self) -> int:
        return self.missing + self.unexpected + self.different + self.invalid


def key_tallies(results: Sequence[CassetteResult]) -> list[KeyTally]:
    """Per attribute key (and span field), the cassettes that differ on it; most frequent first."""
    counts: dict[str, dict[str, set[str]]] = {}
    for result in results:
        for found in result.findings:
            if found.key == OUTCOME_KEY or found.kind not in KINDS:
                continue
            counts.setdefault(found.key, {kind: set() for kind in KINDS})[found.kind].add(result.cassette)
    tallies = [KeyTally(key, *(len(by_kind[kind]) for kind in KINDS)) for key, by_kind in counts.items()]
    return sorted(tallies, key=lambda tally: (-tally.total, tally.key))


def outcome_counts(results: Sequence[CassetteResult]) -> dict[Outcome, int]:
    """Cassettes per outcome, every outcome listed."""
    return {outcome: sum(1 for r in results if r.outcome is outcome) for outcome in Outcome}


def exit_status(results: Sequence[CassetteResult]) -> int:
    """0 when every cassette matches or differs only as the baseline accepts; 1 otherwise."""
    return 0 if all(result.passed for result in results) else 1


@dataclasses.dataclass(frozen=True)
class Scorecard:
    """A whole run, as the reports show it."""

    results: tuple[CassetteResult, ...]
    convention: str
    level: str
    gateway: str
    seconds: float
    baseline: str | None = None  # the baseline file applied
    stale: tuple[str, ...] = ()  # baseline entries that no longer occur, described
    unscored: tuple[str, ...] = ()  # baseline entries for cassettes not scored (unknown, or left out), described

    @property
    def exit_status(self) -> int:
        return exit_status(self.results)

    @property
    def tallies(self) -> list[KeyTally]:
        return key_tallies(self.results)

"""The scorecard as JSON (``--json FILE``): every cassette with its findings, the per-key tally, the summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from testopeninference.compare import Finding
from testopeninference.conform.outcomes import Scorecard, outcome_counts
from testopeninference.recorder.atomic import write_atomic


def scorecard_data(card: Scorecard) -> dict[str, object]:
    return {
        "convention": card.convention,
        "level": card.level,
        "gateway": card.gateway,
        "seconds": round(card.seconds, 3),
        "exit_status": card.exit_status,
        "summary": {outcome.value: count for outcome, count in outcome_counts(card.results).items()},
        "baseline": card.baseline,
        "stale_baseline_entries": list(card.stale),
        "unscored_baseline_entries": list(card.unscored),
        "cassettes": [
            {"cassette": r.cassette, "endpoint": r.endpoint, "outcome": r.outcome.value, "passed": r.passed,
             "trace_id": r.trace_id, "seconds": round(r.seconds, 3), "detail": r.detail,
             "findings": [_finding(found, found in r.accepted) for found in r.findings],
             "shared_with_reference": list(r.shared)}
            for r in card.results
        ],
        "keys": [dataclasses.asdict(tally) | {"cassettes": tally.total} for tally in card.tallies],
    }


def _finding(found: Finding, accepted: bool) -> dict[str, object]:
    return {"key": found.key, "kind": found.kind, "expected": found.expected, "actual": found.actual,
            "line": found.line, "accepted": accepted}


def scorecard_json(card: Scorecard) -> str:
    return json.dumps(scorecard_data(card), indent=2, ensure_ascii=False, default=_plain) + "\n"


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def write_json(path: Path, card: Scorecard) -> None:
    write_atomic(path, scorecard_json(card))

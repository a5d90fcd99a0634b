"""Where two JSON values disagree: the one JSON difference, used by request matching and span comparison.

Numbers compare by value (7 and 7.0 agree unless ``strict``), a flag is never a number (true and 1 differ),
NaN agrees with NaN (DeepDiff's rule). Equal values return at once; DeepDiff runs only on the parts that differ, so a
large value with one changed leaf costs about as much as that leaf. Callers word the findings their way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepdiff import DeepDiff


__all__ = ["MISSING", "JsonDifference", "json_differences", "json_equal", "json_path"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()  # the side of a difference that has no value at its path


@dataclass(frozen=True)
class JsonDifference:
    """One disagreement: ``expected`` is MISSING for an unexpected member or item, ``actual`` for a missing one."""

    path: str  # choices[0].message, "" at the root
    expected: object
    actual: object


def json_equal(expected: object, actual: object, *, strict: bool = False) -> bool:
    """Whether two JSON values agree by the rules above; ``strict`` keeps int and float apart."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            json_equal(value, actual[key], strict=strict) for key, value in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            json_equal(want, got, strict=strict) for want, got in zip(expected, actual))
    if not strict and _same_number(expected, actual):
        return True
    return type(expected) is type(actual) and expected == actual


def json_differences(expected: object, actual: object, *, strict: bool = False) -> list[JsonDifference]:
    """Each disagreement, as DeepDiff finds it over the whole values (empty when they agree)."""
    if json_equal(expected, actual, strict=strict):
        return []
    return _findings(expected, actual, [], strict)


def json_path(parts: Iterable[object]) -> str:
    """['choices', 0, 'message'] -> choices[0].message"""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _findings(expected: object, actual: object, path: list[object], strict: bool) -> list[JsonDifference]:
    """DeepDiff's findings for the parts that differ, found without running it on the parts that agree.

    Walked here exactly where DeepDiff walks item by item: objects with the same keys, and arrays of one
    length holding an object or array (it pairs those by index). Objects whose keys differ (which it may
    report whole) and arrays of plain values (which it aligns with difflib) are left to it; two differing
    leaves, or values of different kinds, are the one change it would report.
    """
    pairs: Iterable[tuple[object, object, object]]
    if isinstance(expected, dict) and isinstance(actual, dict) and expected.keys() == actual.keys():
        pairs = ((key, value, actual[key]) for key, value in expected.items())
    elif (isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual)
          and any(isinstance(item, (dict, list)) for item in (*expected, *actual))):
        pairs = zip(range(len(expected)), expected, actual)
    elif _both(dict, expected, actual) or _both(list, expected, actual):
        return _deepdiff_findings(expected, actual, path, strict)
    elif _both(float, expected, actual) and expected != expected and actual != actual:
        return []  # NaN and NaN: DeepDiff's rule
    else:  # two leaves, or values of different kinds: DeepDiff would say just this
        return [JsonDifference(json_path(path), expected, actual)]
    findings: list[JsonDifference] = []
    for part, want, got in pairs:
        if not json_equal(want, got, strict=strict):
            findings += _findings(want, got, [*path, part], strict)
    return findings


def _deepdiff_findings(expected: object, actual: object, path: list[object], strict: bool) -> list[JsonDifference]:
    findings = []
    deep_diff: type[DeepDiff] = getattr(sys.modules[__name__], "DeepDiff")  # through __getattr__ the first time
    for report, items in deep_diff(expected, actual).tree.items():
        for item in items:
            if report == "type_changes" and not strict and _same_number(item.t1, item.t2):
                continue  # 7 and 7.0 are one JSON number
            where = json_path([*path, *item.path(output_format="list")])
            if report.endswith("_removed"):
                findings.append(JsonDifference(where, item.t1, MISSING))
            elif report.endswith("_added"):
                findings.append(JsonDifference(where, MISSING, item.t2))
            else:
                findings.append(JsonDifference(where, item.t1, item.t2))
    return findings


def _both(kind: type, left: object, right: object) -> bool:
    return isinstance(left, kind) and isinstance(right, kind)


def _same_number(left: object, right: object) -> bool:
    numbers = (int, float)  # bool is neither, by type
    return type(left) in numbers and type(right) in numbers and left == right


def __getattr__(name: str) -> Any:
    """``DeepDiff``, imported when first needed: most comparisons never need it, and its import takes ~50 ms."""
    if name != "DeepDiff":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from deepdiff import DeepDiff

    globals()["DeepDiff"] = DeepDiff
    return DeepDiff

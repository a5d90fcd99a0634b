"""Lenient comparison of a gateway's span against its golden span.

The rules are those of the reference Go harness (Envoy AI Gateway's
testopeninference): ids, times and trace flags are ignored, zero values count
as absent, JSON attributes compare as data, and error messages compare only on
their HTTP status code, because bodies and SDK details differ between backends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from os import PathLike
from pathlib import Path
from typing import Any

from deepdiff import DeepDiff
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder.resources import is_packaged
from testopeninference.recorder.volatile import VOLATILE_ATTRIBUTES, without_loopback_ports
from testopeninference.errors import SpanMismatchError, TestOpenInferenceError
from testopeninference.span_input import as_log_records, as_span

__all__ = [
    "assert_log_records_equal",
    "assert_span_equal",
    "log_record_differences",
    "normalise_attributes",
    "span_differences",
]

# Added only by the Python instrumentation; the reference never compares them.
PYTHON_ONLY_KEYS = frozenset({"exception.stacktrace", "exception.escaped"})
_ERROR_CODE = re.compile(r"Error code: \d+")
_SHOWN_CHARS = 80
_Owner = Span | Span.Event | Span.Link  # what carries attributes


@dataclass(frozen=True, eq=False)
class _Json:
    """A string attribute holding a JSON object or array, compared as data."""

    text: str
    value: object


def span_differences(
    expected: Span, actual: Span, *, ignore_keys: Iterable[str] = ()
) -> list[str]:
    """Each difference as one short human-readable line; empty when the spans match.

    Either span may be a ``Span``, a protojson or OTLP/JSON dict, or a JSON file path.
    """
    expected, actual = as_span(expected), as_span(actual)
    ignore = tuple(ignore_keys)
    error = Status.STATUS_CODE_ERROR in (expected.status.code, actual.status.code)

    def attributes(prefix: str, want: _Owner, got: _Owner) -> list[str]:
        return [prefix + line for line in _attribute_lines(want.attributes, got.attributes, error, ignore)]

    kinds, codes = Span.SpanKind, Status.StatusCode
    status, other = expected.status, actual.status
    differences = [
        *_field("name", expected.name, actual.name),
        *_field("kind", _enum(kinds, expected.kind), _enum(kinds, actual.kind)),
        *_field("status.code", _enum(codes, status.code), _enum(codes, other.code)),
        *_field("status.message", _error_code(status.message), _error_code(other.message)),
        *attributes("", expected, actual),
        *_field("events", len(expected.events), len(actual.events)),
    ]
    for i, (event, actual_event) in enumerate(zip(expected.events, actual.events)):
        differences += _field(f"event {i} name", event.name, actual_event.name)
        differences += attributes(f"event {i} {event.name!r} ", event, actual_event)
    differences += _field("links", len(expected.links), len(actual.links))
    for i, links in enumerate(zip(expected.links, actual.links)):
        differences += attributes(f"link {i} ", *links)
    return differences


def assert_span_equal(
    expected: Span,
    actual: Span,
    *,
    ignore_keys: Iterable[str] = (),
    golden: str | PathLike[str] | None = None,
) -> None:
    """Raise SpanMismatchError listing every difference, so one run shows them all."""
    if golden is None and isinstance(expected, (str, PathLike)):
        golden = expected
    differences = span_differences(expected, actual, ignore_keys=ignore_keys)
    if not differences:
        return
    golden_file = _golden_file(golden) if golden is not None else None
    source = f"golden {golden_file}" if golden_file is not None else "the expected span"
    lines = [f"span differs from {source}", *(f"  {line}" for line in differences)]
    if golden_file is not None:
        lines.append(mismatch_hint(golden_file))
    raise SpanMismatchError("\n".join(lines))


def _golden_file(golden: str | PathLike[str]) -> Path:
    """``golden`` as a file: a cassette name (``"chat-basic"``) stands for its golden under the current settings."""
    path = Path(golden)
    if path.suffix == ".json" or len(path.parts) > 1 or path.exists():
        return path
    from testopeninference.goldens import golden_location  # the API layer above; only for this message

    try:
        return golden_location(Settings.from_env(record_mode=RecordMode.NONE), str(golden)).path
    except TestOpenInferenceError:
        return path


def mismatch_hint(golden: str | PathLike[str]) -> str:
    """The way out of a difference: a packaged golden is the reference, one's own may be out of date."""
    if is_packaged(Path(golden)):
        return ("The golden ships with testopeninference (the reference instrumentation's span): change what the "
                "gateway exports, or pass ignore_keys=[...] for attributes it adds on purpose.")
    name = Path(golden).name.removesuffix(".json")
    return (f"If the golden is out of date, re-record it: testopeninference record --force {name} "
            f"(or delete {golden} and run pytest --record-spans).")


def log_record_differences(
    expected: Any, actual: Any, *, ignore_keys: Iterable[str] = ()
) -> list[str]:
    """Each difference between two sets of log records (events), compared in order, one line each.

    Records may be given as a list of ``LogRecord``s, a ``LogsData``, or a ``.logs.json`` file path.
    Compared: event name, body (as data, JSON strings parsed, zero values dropped) and attributes (the
    span rules); ignored: times, trace and span ids, flags.
    """
    want, got = as_log_records(expected), as_log_records(actual)
    ignore = tuple(ignore_keys)
    differences = _field("log records", len(want), len(got))
    for i, (record, other) in enumerate(zip(want, got)):
        prefix = f"log record {i} {record.event_name or '(no event name)'!r} "
        differences += [prefix + line for line in _field("event name", record.event_name, other.event_name)]
        body = _json_difference(_body(record), _body(other))
        if body:
            differences.append(f"{prefix}body: {body}")
        differences += [prefix + line for line in _attribute_lines(record.attributes, other.attributes, False, ignore)]
    return differences


def assert_log_records_equal(
    expected: Any, actual: Any, *, ignore_keys: Iterable[str] = (), golden: str | PathLike[str] | None = None
) -> None:
    """Raise SpanMismatchError listing every difference between two sets of log records."""
    if golden is None and isinstance(expected, (str, PathLike)):
        golden = expected
    differences = log_record_differences(expected, actual, ignore_keys=ignore_keys)
    if differences:
        source = f"golden {golden}" if golden is not None else "the expected log records"
        raise SpanMismatchError("\n".join([f"log records differ from {source}", *(f"  {d}" for d in differences)]))


def _body(record: LogRecord) -> object:
    """A record's body as comparable data: JSON strings parsed, zero values dropped, loopback ports masked."""

    def clean(value: object) -> object:
        if isinstance(value, str):
            value = without_loopback_ports(value)
            if value.lstrip().startswith(("{", "[")):
                try:
                    return clean(json.loads(value))
                except ValueError:
                    return value
            return value
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    return _drop_zeros(clean(_python(record.body)))


def normalise_attributes(
    attributes: Iterable[KeyValue], *, error: bool = False, ignore_keys: Iterable[str] = ()
) -> dict[str, object]:
    """Attributes as key -> comparable value, without the ones the rules ignore."""
    ignore = tuple(ignore_keys)
    result: dict[str, object] = {}
    for attribute in attributes:
        value = _normalised(attribute.key, attribute.value, error, ignore)
        if value is not _ABSENT:
            result[attribute.key] = value
    return result


_ABSENT = object()  # an attribute the rules ignore, or a zero value (counted as absent)
_SCALARS = (str, int, float, bool, bytes)


def _normalised(key: str, any_value: AnyValue, error: bool, ignore: tuple[str, ...]) -> object:
    """One attribute's comparable value, or ``_ABSENT`` when the rules leave it out."""
    value = _python(any_value)
    # The model name of a failed request is whatever the backend echoed, if anything.
    skip = key in PYTHON_ONLY_KEYS or key in VOLATILE_ATTRIBUTES or (error and key == "llm.model_name")
    if skip or _is_zero(value) or any(key == p or fnmatchcase(key, p) for p in ignore):
        return _ABSENT
    if isinstance(value, str):
        return _normalise_string(key, without_loopback_ports(value))
    return value


def _attribute_lines(
    want: Sequence[KeyValue], got: Sequence[KeyValue], error: bool, ignore: tuple[str, ...]
) -> list[str]:
    """``_attribute_differences`` of the normalised attributes, in one pass by key.

    A key whose two values are the same scalar of the same type cannot differ after normalising (the rules
    depend only on key and value), so it is skipped before any normalising or JSON parsing. Lines come in
    the same order as ``_attribute_differences`` gives them: the expected keys, then the unexpected ones.
    """
    expected = {attribute.key: attribute.value for attribute in want}
    actual = {attribute.key: attribute.value for attribute in got}
    if len(expected) != len(want) or len(actual) != len(got):  # a repeated key: its first non-zero value counts
        return list(_attribute_differences(normalise_attributes(want, error=error, ignore_keys=ignore),
                                           normalise_attributes(got, error=error, ignore_keys=ignore)))
    lines: list[str] = []
    unexpected: dict[str, object] = {}
    for key, value in expected.items():
        other = actual.get(key)
        if other is not None and _same_scalar(value, other):
            continue
        mine = _normalised(key, value, error, ignore)
        theirs = _ABSENT if other is None else _normalised(key, other, error, ignore)
        if mine is _ABSENT:
            if theirs is not _ABSENT:
                unexpected[key] = theirs
        elif theirs is _ABSENT:
            lines.append(f"attribute {key!r}: missing (expected {_show(mine)})")
        else:
            what = _value_difference(mine, theirs)
            if what:
                lines.append(f"attribute {key!r}: {what}")
    for key, other in actual.items():
        theirs = unexpected.get(key, _ABSENT) if key in expected else _normalised(key, other, error, ignore)
        if theirs is not _ABSENT:
            lines.append(f"attribute {key!r}: unexpected (got {_show(theirs)})")
    return lines


def _same_scalar(one: AnyValue, other: AnyValue) -> bool:
    """Both the same string, number or flag, by type (NaN is never the same, as in the full comparison)."""
    kind = one.WhichOneof("value")
    if kind is None or kind != other.WhichOneof("value") or kind in ("array_value", "kvlist_value"):
        return False
    return getattr(one, kind) == getattr(other, kind)


def _normalise_string(key: str, value: str) -> object:
    """Undo the string differences that say nothing about the instrumentation."""
    if key == "exception.type":
        return value.removeprefix("openai.")
    if key == "exception.message":
        return _error_code(value)
    if value.lstrip().startswith(("{", "[")):
        try:
            return _Json(value, _drop_zeros(json.loads(value)))
        except ValueError:
            pass
    return value


def _error_code(message: str) -> str:
    """The `Error code: N` part of a message, or the whole message when it has none."""
    match = _ERROR_CODE.search(message)
    return match.group() if match else message


def _python(value: AnyValue) -> object:
    """An AnyValue as a plain Python value of the matching kind (None when unset)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_python(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _python(item.value) for item in value.kvlist_value.values}
    return None if kind is None else getattr(value, kind)


def _is_zero(value: object) -> bool:
    """Zero values ("", 0, 0.0, false, null, empty collections) count as absent."""
    return not value  # a _Json is always truthy


def _drop_zeros(value: object) -> object:
    """JSON with zero-valued object members dropped recursively; array positions kept."""
    if isinstance(value, dict):
        cleaned = {key: _drop_zeros(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if not _is_zero(item)}
    if isinstance(value, list):
        return [_drop_zeros(item) for item in value]
    return value


def _attribute_differences(
    expected: Mapping[str, object], actual: Mapping[str, object]
) -> Iterator[str]:
    """One line per attribute key that is missing, unexpected or different."""
    for key in [*expected, *(key for key in actual if key not in expected)]:
        if key not in actual:
            yield f"attribute {key!r}: missing (expected {_show(expected[key])})"
        elif key not in expected:
            yield f"attribute {key!r}: unexpected (got {_show(actual[key])})"
        else:
            what = _value_difference(expected[key], actual[key])
            if what:
                yield f"attribute {key!r}: {what}"


def _value_difference(expected: object, actual: object) -> str | None:
    """How two attribute values differ, or None when they match."""
    if isinstance(expected, _Json) and isinstance(actual, _Json):
        return _json_difference(expected.value, actual.value)
    found = _first_difference(expected, actual, "", strict=True)
    if found is None:
        return None
    path, what = found
    return f"at {path}: {what}" if path else what


def _json_difference(expected: object, actual: object, shown: int = 3) -> str | None:
    """DeepDiff's findings for two JSON values (numbers by value), the first few by path.

    Equal values (by the same rules: 7 and 7.0 agree, true and 1 do not) return at once, before any DeepDiff.
    """
    if _first_difference(expected, actual, "", strict=False) is None:
        return None
    findings = _json_findings(expected, actual, [])
    if not findings:
        return None
    findings.sort()
    more = f" (and {len(findings) - shown} more)" if len(findings) > shown else ""
    return "JSON differs at " + "; ".join(findings[:shown]) + more


def _json_findings(expected: object, actual: object, path: list[object]) -> list[str]:
    """The findings of DeepDiff for the parts that differ, found without running it on the parts that agree.

    Walked here exactly where DeepDiff walks item by item: objects with the same keys, and arrays of one
    length holding an object or array (it pairs those by index). Anything else (objects whose keys differ,
    which it may report whole; arrays of plain values, which it aligns with difflib; leaves) is left to it.
    """
    pairs: Iterable[tuple[object, object, object]] = ()
    if isinstance(expected, dict) and isinstance(actual, dict) and expected.keys() == actual.keys():
        pairs = ((key, value, actual[key]) for key, value in expected.items())
    elif (isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual)
          and any(isinstance(item, (dict, list)) for item in (*expected, *actual))):
        pairs = zip(range(len(expected)), expected, actual)
    else:
        return _deepdiff_findings(expected, actual, path)
    findings: list[str] = []
    for part, want, got in pairs:
        if _first_difference(want, got, "", strict=False) is not None:
            findings += _json_findings(want, got, [*path, part])
    return findings


def _deepdiff_findings(expected: object, actual: object, path: list[object]) -> list[str]:
    findings = []
    for report, items in DeepDiff(expected, actual).tree.items():
        for item in items:
            if report == "type_changes" and _same_number(item.t1, item.t2):
                continue  # 7 and 7.0 are one JSON number
            where = _json_path([*path, *item.path(output_format="list")])
            if report.endswith("_removed"):
                findings.append(f"{where}: missing (expected {_show(item.t1)})")
            elif report.endswith("_added"):
                findings.append(f"{where}: unexpected (got {_show(item.t2)})")
            else:
                findings.append(f"{where}: expected {_show(item.t1)}, got {_show(item.t2)}")
    return findings


def _same_number(left: object, right: object) -> bool:
    numbers = (int, float)  # bool is neither, by type
    return type(left) in numbers and type(right) in numbers and left == right


def _json_path(parts: list[object]) -> str:
    """['choices', 0, 'message'] -> choices[0].message"""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(root)"


def _first_difference(
    expected: object, actual: object, path: str, *, strict: bool
) -> tuple[str, str] | None:
    """The path of the first disagreement and what it is; strict keeps int and double apart."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in [*expected, *(key for key in actual if key not in expected)]:
            here = f"{path}.{key}" if path else str(key)
            if key not in actual:
                return here, f"missing (expected {_show(expected[key])})"
            if key not in expected:
                return here, f"unexpected (got {_show(actual[key])})"
            found = _first_difference(expected[key], actual[key], here, strict=strict)
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (want, got) in enumerate(zip(expected, actual)):
            found = _first_difference(want, got, f"{path}[{i}]", strict=strict)
            if found:
                return found
        if len(expected) != len(actual):
            return path, f"expected {len(expected)} items, got {len(actual)}"
        return None
    numbers = (int, float)  # bool is neither, by type
    if not strict and type(expected) in numbers and type(actual) in numbers:
        same = expected == actual
    else:
        same = type(expected) is type(actual) and expected == actual
    return None if same else (path, f"expected {_show(expected)}, got {_show(actual)}")


def _field(name: str, expected: object, actual: object) -> list[str]:
    """The line for a span field (or count) that differs; none when it agrees."""
    if expected == actual:
        return []
    return [f"{name}: expected {_show(expected)}, got {_show(actual)}"]


def _enum(enum: Any, number: int) -> str:
    """An enum value's name, or its number when this proto version does not know it."""
    try:
        return str(enum.Name(number))
    except ValueError:
        return str(number)


def _show(value: object) -> str:
    """A value as quoted in a difference line, cut to about 80 characters."""
    text = repr(value.text if isinstance(value, _Json) else value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."

"""Lenient comparison of a gateway's span against its golden span.

The rules are those of the reference Go harness (Envoy AI Gateway's
testopeninference): ids, times and trace flags are ignored, zero values count
as absent, JSON attributes compare as data, and error messages compare only on
the HTTP status they carry, because bodies and SDK details differ between backends.

Span name and kind are compared unless ``gateway=True``: a gateway names its spans its own way, so for it a
differing name or kind is a note, not a difference (``compare_name=`` / ``compare_kind=`` decide either way).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from os import PathLike
from pathlib import Path
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder.json_diff import MISSING, JsonDifference, json_differences
from testopeninference.recorder.resources import is_packaged
from testopeninference.recorder.volatile import VOLATILE_ATTRIBUTES, stable_text
from testopeninference.errors import PYTEST_RECORD, SpanMismatchError, TestOpenInferenceError, record_command
from testopeninference.span_input import as_log_records, as_span

__all__ = [
    "Finding",
    "SpanComparison",
    "assert_log_records_equal",
    "assert_span_equal",
    "compare_spans",
    "log_record_differences",
    "normalise_attributes",
    "span_differences",
]

# Added only by the Python instrumentation; the reference never compares them.
PYTHON_ONLY_KEYS = frozenset({"exception.stacktrace", "exception.escaped"})
# Error types compared by class name: "openai.BadRequestError" and "BadRequestError" agree.
ERROR_TYPE_KEYS = frozenset({"exception.type", "error.type"})
_SHOWN_CHARS = 80
_Owner = Span | Span.Event | Span.Link  # what carries attributes


@dataclass(frozen=True, eq=False)
class _Json:
    """A string attribute holding a JSON object or array, compared as data."""

    text: str
    value: object


@dataclass(frozen=True)
class _Rules:
    """How one comparison runs: an error span's leniency, the keys ignored, whether values are shown whole."""

    error: bool
    ignore: tuple[str, ...]
    full: bool


@dataclass(frozen=True)
class Finding:
    """One difference in structured form, for tallies across spans (``testopeninference conform``).

    ``key`` is the attribute key, or the span field (``status.code``, ``events``, ``links``, ``name``);
    ``kind`` is ``missing``, ``unexpected`` or ``different``; ``expected`` / ``actual`` hold the compared
    values (None where absent; JSON strings as their text); ``line`` is the difference's line.
    """

    key: str
    kind: str
    expected: object
    actual: object
    line: str


@dataclass(frozen=True)
class SpanComparison:
    """What comparing two spans found: ``differences`` fail the comparison, ``notes`` (fields not compared) do not.

    ``findings`` are the differences in structured form, one per line of ``differences``, in the same order.
    """

    differences: list[str]
    notes: list[str]
    findings: list[Finding] = field(default_factory=list)


def compare_spans(
    expected: Span,
    actual: Span,
    *,
    ignore_keys: Iterable[str] = (),
    gateway: bool = False,
    compare_name: bool | None = None,
    compare_kind: bool | None = None,
    full: bool = False,
) -> SpanComparison:
    """The differences and notes of two spans (see ``span_differences`` for the options)."""
    expected, actual = as_span(expected), as_span(actual)
    error = Status.STATUS_CODE_ERROR in (expected.status.code, actual.status.code)
    rules = _Rules(error=error, ignore=tuple(ignore_keys), full=full)
    compared = {"name": not gateway if compare_name is None else compare_name,
                "kind": not gateway if compare_kind is None else compare_kind}
    differences, notes = _name_and_kind(expected, actual, compared, full)
    findings = [_field_finding(line) for line in differences]
    findings += [_field_finding(line) for line in _status_differences(expected.status, actual.status, full)]
    findings += _attribute_findings(expected.attributes, actual.attributes, error, rules.ignore, full=full)
    findings += [_field_finding(line, "events") for line in _event_differences(expected.events, actual.events, rules)]
    findings += [_field_finding(line, "links") for line in _link_differences(expected.links, actual.links, rules)]
    return SpanComparison([found.line for found in findings], notes, findings)


def _field_finding(line: str, key: str | None = None) -> Finding:
    """A span field's difference (``name: expected 'a', got 'b'``) as a ``Finding``; events and links are
    findings of their own key, whatever the line says."""
    field_name = key or line.split(":", 1)[0]
    return Finding(field_name, "different", None, None, line)


def span_differences(
    expected: Span,
    actual: Span,
    *,
    ignore_keys: Iterable[str] = (),
    gateway: bool = False,
    compare_name: bool | None = None,
    compare_kind: bool | None = None,
    full: bool = False,
) -> list[str]:
    """Each difference as one short human-readable line; empty when the spans match.

    Either span may be a ``Span``, a protojson or OTLP/JSON dict, or a JSON file path. ``gateway=True`` says
    the actual span is a gateway's: its name and kind are then not compared (they become notes, see
    ``compare_spans``), and ``assert_span_equal`` advises on the gateway rather than re-recording.
    ``compare_name`` / ``compare_kind`` override that either way. ``full=True`` shows values whole
    instead of cut to about 80 characters.
    """
    return compare_spans(expected, actual, ignore_keys=ignore_keys, gateway=gateway, compare_name=compare_name,
                         compare_kind=compare_kind, full=full).differences


def _name_and_kind(
    expected: Span, actual: Span, compared: Mapping[str, bool], full: bool
) -> tuple[list[str], list[str]]:
    """A differing name or kind: a difference where ``compared`` says so, else a note."""
    differences: list[str] = []
    notes: list[str] = []
    kinds = Span.SpanKind
    fields = (("name", expected.name, actual.name), ("kind", _enum(kinds, expected.kind), _enum(kinds, actual.kind)))
    for field, want, got in fields:
        for line in _field(field, want, got, full):
            if compared[field]:
                differences.append(line)
            else:
                notes.append(f"{line} (not compared)")
    return differences, notes


def _status_differences(expected: Status, actual: Status, full: bool) -> list[str]:
    """Status code by name; status message by the HTTP status or error class it carries (``_error_code``)."""
    codes = Status.StatusCode
    return [
        *_field("status.code", _enum(codes, expected.code), _enum(codes, actual.code), full),
        *_field("status.message", _error_code(expected.message), _error_code(actual.message), full),
    ]


def _event_differences(
    expected: Sequence[Span.Event], actual: Sequence[Span.Event], rules: _Rules
) -> list[str]:
    """A count that differs names the events on each side; then the pairs, in order, by name and attributes."""
    differences = []
    if len(expected) != len(actual):
        differences.append(f"events: expected {_events(expected, rules.full)}, got {_events(actual, rules.full)}")
    for i, (event, other) in enumerate(zip(expected, actual)):
        differences += _field(f"event {i} name", event.name, other.name, rules.full)
        differences += _owner_attributes(f"event {i} {event.name!r} ", event, other, rules)
    return differences


def _events(events: Sequence[Span.Event], full: bool) -> str:
    """``none``, or the count and each event: an exception with its type and message."""
    if not events:
        return "none"
    return f"{len(events)}: " + "; ".join(_event_summary(event, full) for event in events)


def _event_summary(event: Span.Event, full: bool) -> str:
    """``exception BadRequestError: "Error code: 400 - ..."`` for an exception event, else the event's name."""
    text = event.name or "(no name)"
    if event.name != "exception":
        return text
    found = {a.key: a.value.string_value for a in event.attributes if a.key in ("exception.type", "exception.message")}
    if found.get("exception.type"):
        text += " " + _class_name(found["exception.type"])
    if found.get("exception.message"):
        text += ": " + _quoted(found["exception.message"], full)
    return text


def _link_differences(expected: Sequence[Span.Link], actual: Sequence[Span.Link], rules: _Rules) -> list[str]:
    differences = _field("links", len(expected), len(actual), rules.full)
    for i, (link, other) in enumerate(zip(expected, actual)):
        differences += _owner_attributes(f"link {i} ", link, other, rules)
    return differences


def _owner_attributes(prefix: str, want: _Owner, got: _Owner, rules: _Rules) -> list[str]:
    lines = _attribute_lines(want.attributes, got.attributes, rules.error, rules.ignore, full=rules.full)
    return [prefix + line for line in lines]


def assert_span_equal(
    expected: Span,
    actual: Span,
    *,
    ignore_keys: Iterable[str] = (),
    golden: str | PathLike[str] | None = None,
    gateway: bool = False,
    compare_name: bool | None = None,
    compare_kind: bool | None = None,
    full: bool = False,
) -> None:
    """Raise SpanMismatchError listing every difference (and the notes), so one run shows them all.

    The options are ``span_differences``'s. The closing advice fits the comparison: for a gateway's span
    (``gateway=True``) it says to fix the gateway or tolerate the difference; for a recording against its
    own golden, how to re-record it.
    """
    if golden is None and isinstance(expected, (str, PathLike)):
        golden = expected
    found = compare_spans(expected, actual, ignore_keys=ignore_keys, gateway=gateway, compare_name=compare_name,
                          compare_kind=compare_kind, full=full)
    if not found.differences:
        return
    golden_file = _golden_file(golden) if golden is not None else None
    source = f"golden {golden_file}" if golden_file is not None else "the expected span"
    lines = [f"span differs from {source}", *(f"  {line}" for line in found.differences),
             *(f"  note: {line}" for line in found.notes)]
    if gateway or golden_file is not None:
        lines.append(mismatch_hint(golden_file, gateway=gateway))
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


GATEWAY_HINT = ("The gateway's span differs from the reference span: fix what the gateway exports, or tolerate a "
                "deliberate difference with ignore_keys=[...] (compare_name= / compare_kind= for the span's name "
                "and kind).")


def mismatch_hint(golden: str | PathLike[str] | None, *, gateway: bool = False) -> str:
    """The way out of a difference: a gateway's span or a packaged golden's is the gateway's to fix; a recording
    against one's own golden may mean the golden is out of date."""
    if gateway or golden is None:
        return GATEWAY_HINT
    if is_packaged(Path(golden)):
        return ("The golden ships with testopeninference (the reference instrumentation's span): change what the "
                "gateway exports, or pass ignore_keys=[...] for attributes it adds on purpose.")
    name = Path(golden).name.removesuffix(".json")
    return f"If the golden is out of date, re-record it: {record_command(name)} (or delete {golden} and run {PYTEST_RECORD})."


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
            value = stable_text(value)
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

    return _drop_zeros(clean(plain_value(record.body)))


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
    value = plain_value(any_value)
    # The model name of a failed request is whatever the backend echoed, if anything.
    skip = key in PYTHON_ONLY_KEYS or key in VOLATILE_ATTRIBUTES or (error and key == "llm.model_name")
    if skip or _is_zero(value) or any(key == p or fnmatchcase(key, p) for p in ignore):
        return _ABSENT
    if isinstance(value, str):
        return _normalise_string(key, stable_text(value))
    return value


def _attribute_lines(
    want: Sequence[KeyValue], got: Sequence[KeyValue], error: bool, ignore: tuple[str, ...], *, full: bool = False
) -> list[str]:
    """The lines of ``_attribute_findings``."""
    return [found.line for found in _attribute_findings(want, got, error, ignore, full=full)]


def _attribute_findings(
    want: Sequence[KeyValue], got: Sequence[KeyValue], error: bool, ignore: tuple[str, ...], *, full: bool = False
) -> list[Finding]:
    """``_attribute_difference_findings`` of the normalised attributes, in one pass by key.

    A key whose two values are the same scalar of the same type cannot differ after normalising (the rules
    depend only on key and value), so it is skipped before any normalising or JSON parsing. Lines come in
    the same order as ``_attribute_differences`` gives them: the expected keys, then the unexpected ones.
    """
    expected = {attribute.key: attribute.value for attribute in want}
    actual = {attribute.key: attribute.value for attribute in got}
    if len(expected) != len(want) or len(actual) != len(got):  # a repeated key: its first non-zero value counts
        return list(_attribute_difference_findings(normalise_attributes(want, error=error, ignore_keys=ignore),
                                                   normalise_attributes(got, error=error, ignore_keys=ignore),
                                                   full=full))
    lines: list[Finding] = []
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
            lines.append(_missing(key, mine, full))
        else:
            what = _value_difference(mine, theirs, full)
            if what:
                lines.append(_different(key, mine, theirs, what))
    for key, other in actual.items():
        theirs = unexpected.get(key, _ABSENT) if key in expected else _normalised(key, other, error, ignore)
        if theirs is not _ABSENT:
            lines.append(_unexpected(key, theirs, full))
    return lines


def _missing(key: str, expected: object, full: bool) -> Finding:
    line = f"attribute {key!r}: missing (expected {_show(expected, full)})"
    return Finding(key, "missing", _raw(expected), None, line)


def _unexpected(key: str, actual: object, full: bool) -> Finding:
    return Finding(key, "unexpected", None, _raw(actual), f"attribute {key!r}: unexpected (got {_show(actual, full)})")


def _different(key: str, expected: object, actual: object, what: str) -> Finding:
    return Finding(key, "different", _raw(expected), _raw(actual), f"attribute {key!r}: {what}")


def _raw(value: object) -> object:
    """A compared value as the span holds it: a JSON string as its text."""
    return value.text if isinstance(value, _Json) else value


def _same_scalar(one: AnyValue, other: AnyValue) -> bool:
    """Both the same string, number or flag, by type (NaN is left to the full comparison)."""
    kind = one.WhichOneof("value")
    if kind is None or kind != other.WhichOneof("value") or kind in ("array_value", "kvlist_value"):
        return False
    return bool(getattr(one, kind) == getattr(other, kind))


def _normalise_string(key: str, value: str) -> object:
    """Undo the string differences that say nothing about the instrumentation."""
    if key in ERROR_TYPE_KEYS:
        return _class_name(value)
    if key == "exception.message":
        return _error_code(value)
    if value.lstrip().startswith(("{", "[")):
        try:
            return _Json(value, _drop_zeros(json.loads(value)))
        except ValueError:
            pass
    return value


_ERROR_CODE = re.compile(r"Error code: ([1-5]\d\d)\b")
# A stand-alone 4xx/5xx: not part of a word, a longer or decimal number, a port (":443") or a path.
_HTTP_STATUS = re.compile(r"(?<![\w.:/-])([45]\d\d)(?![\w.])")
_ERROR_CLASS = re.compile(r"\b(?:\w+\.)*(\w+Error)\b")
# The HTTP status each OpenAI SDK status error stands for (openai._exceptions); 5xx has no single one.
_STATUS_OF_ERROR_CLASS = {
    "BadRequestError": 400, "AuthenticationError": 401, "PermissionDeniedError": 403, "NotFoundError": 404,
    "ConflictError": 409, "UnprocessableEntityError": 422, "RateLimitError": 429,
}


def _error_code(message: str) -> str:
    """What an error message (``status.message``, ``exception.message``) is compared on, whoever worded it.

    Its HTTP status as ``Error code: N``, taken from, in order: the OpenAI SDK's ``Error code: N``; a
    stand-alone 4xx/5xx number (a gateway's "upstream returned 400: invalid_request_error", "status_code=404";
    not a port, a decimal or part of a longer number); the status an SDK error class stands for
    (``BadRequestError`` 400, ``NotFoundError`` 404, ..., with any module prefix). So the reference's
    "BadRequestError: Error code: 400 - Invalid 'temperature' ..." and a gateway's "upstream returned 400:
    invalid_request_error" agree, and a 404 does not. A message with no status compares by the error class
    it names (``InternalServerError``), else whole ("connection refused").
    """
    found = _ERROR_CODE.search(message) or _HTTP_STATUS.search(message)
    if found:
        return f"Error code: {found.group(1)}"
    error_class = _ERROR_CLASS.search(message)
    if error_class is None:
        return message
    status = _STATUS_OF_ERROR_CLASS.get(error_class.group(1))
    return f"Error code: {status}" if status else error_class.group(1)


def _class_name(error_type: str) -> str:
    """The one prefix rule of ``exception.type`` and ``error.type``: a module path before the class name is
    dropped, so ``openai.BadRequestError`` (the SDK), ``BadRequestError`` and ``litellm.BadRequestError`` agree."""
    return error_type.rsplit(".", 1)[-1]


def plain_value(value: AnyValue) -> object:
    """An AnyValue as a plain Python value of the matching kind (None when unset); ``show`` prints it as JSON."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: plain_value(item.value) for item in value.kvlist_value.values}
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
    expected: Mapping[str, object], actual: Mapping[str, object], *, full: bool = False
) -> Iterator[str]:
    """One line per attribute key that is missing, unexpected or different."""
    return (found.line for found in _attribute_difference_findings(expected, actual, full=full))


def _attribute_difference_findings(
    expected: Mapping[str, object], actual: Mapping[str, object], *, full: bool = False
) -> Iterator[Finding]:
    """One ``Finding`` per attribute key that is missing, unexpected or different."""
    for key in [*expected, *(key for key in actual if key not in expected)]:
        if key not in actual:
            yield _missing(key, expected[key], full)
        elif key not in expected:
            yield _unexpected(key, actual[key], full)
        else:
            what = _value_difference(expected[key], actual[key], full)
            if what:
                yield _different(key, expected[key], actual[key], what)


def _value_difference(expected: object, actual: object, full: bool = False) -> str | None:
    """How two attribute values differ, or None when they match: JSON strings as data, numbers by value;
    other values (arrays, maps, scalars) strictly, an int never equal to a double."""
    if isinstance(expected, _Json) and isinstance(actual, _Json):
        return _json_difference(expected.value, actual.value, full=full)
    findings = json_differences(expected, actual, strict=True)
    if len(findings) == 1 and not findings[0].path:
        return _finding_what(findings[0], full)
    return _findings_worded("at ", findings, full)


def _json_difference(expected: object, actual: object, shown: int = 3, *, full: bool = False) -> str | None:
    """``json_differences`` of two JSON values (numbers by value) in words, the first few by path."""
    return _findings_worded("JSON differs at ", json_differences(expected, actual), full, shown)


def _findings_worded(lead: str, findings: list[JsonDifference], full: bool, shown: int = 3) -> str | None:
    """``lead`` and the first ``shown`` findings as "path: what", sorted; None when there are none."""
    if not findings:
        return None
    worded = sorted(f"{found.path or '(root)'}: {_finding_what(found, full)}" for found in findings)
    more = f" (and {len(worded) - shown} more)" if len(worded) > shown else ""
    return lead + "; ".join(worded[:shown]) + more


def _finding_what(found: JsonDifference, full: bool) -> str:
    if found.actual is MISSING:
        return f"missing (expected {_show(found.expected, full)})"
    if found.expected is MISSING:
        return f"unexpected (got {_show(found.actual, full)})"
    return f"expected {_show(found.expected, full)}, got {_show(found.actual, full)}"


def _field(name: str, expected: object, actual: object, full: bool = False) -> list[str]:
    """The line for a span field (or count) that differs; none when it agrees."""
    if expected == actual:
        return []
    return [f"{name}: expected {_show(expected, full)}, got {_show(actual, full)}"]


def _enum(enum: Any, number: int) -> str:
    """An enum value's name, or its number when this proto version does not know it."""
    try:
        return str(enum.Name(number))
    except ValueError:
        return str(number)


def _show(value: object, full: bool = False) -> str:
    """A value as quoted in a difference line, cut to about 80 characters unless ``full``."""
    return _clip(repr(value.text if isinstance(value, _Json) else value), full)


def _quoted(text: str, full: bool) -> str:
    """``text`` in double quotes (an exception's message, as in a log), cut unless ``full``."""
    return '"' + _clip(text, full, _SHOWN_CHARS - 2) + '"'


def _clip(text: str, full: bool, room: int = _SHOWN_CHARS) -> str:
    return text if full or len(text) <= room else text[: room - 3] + "..."

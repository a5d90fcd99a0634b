"""Golden span files: one ``opentelemetry.proto.trace.v1.Span`` in protojson form.

The form is what Go's ``protojson.Marshal`` writes, so Go and Python read the
same files: lowerCamelCase names, enums by name, int64 as strings, doubles
in Go's number form (``go_float``), fields in declaration order; then 2-space
indent and a trailing newline. Volatile
fields are cleared before writing (``VOLATILE_FIELDS``), and writes are
atomic, so re-recording an unchanged cassette changes no byte and no
half-written file can exist.
"""

from __future__ import annotations

import decimal
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.atomic import write_atomic
from testopeninference.recorder.file_cache import cached
from testopeninference.recorder.volatile import clear_volatile
from testopeninference.recorder.resources import repair_hint
from testopeninference.errors import GoldenSpanMissingError, InvalidGoldenSpanError

if TYPE_CHECKING:  # what a generated message's DESCRIPTOR is with the upb backend
    from google._upb._message import Descriptor as UpbDescriptor

VOLATILE_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "events[].time_unix_nano",
    "links[].trace_id",
    "links[].span_id",
)
"""Fields that differ on every run, cleared when written and ignored when compared.

Run-dependent attribute values are handled by ``recorder.volatile``."""


def normalise(span: Span) -> Span:
    """A copy of ``span`` with volatile fields cleared and tracebacks made stable (``recorder.volatile``)."""
    clean = Span()
    clean.CopyFrom(span)
    for name in ("trace_id", "span_id", "parent_span_id", "start_time_unix_nano", "end_time_unix_nano"):
        clean.ClearField(name)
    clear_volatile(clean.attributes)
    for event in clean.events:
        event.ClearField("time_unix_nano")
        clear_volatile(event.attributes)
    for link in clean.links:
        link.ClearField("trace_id")
        link.ClearField("span_id")
    return clean


def normalise_logs(records: list[LogRecord], scope: InstrumentationScope) -> LogsData:
    """The log records of one span as ``LogsData``, volatile fields cleared (times, trace and span ids).

    The resource is left out, as it is for spans: it describes the recording process, not the instrumentation.
    """
    logs = LogsData()
    scope_logs = logs.resource_logs.add().scope_logs.add()
    scope_logs.scope.CopyFrom(scope)
    for record in records:
        clean = scope_logs.log_records.add()
        clean.CopyFrom(record)
        for name in ("time_unix_nano", "observed_time_unix_nano", "trace_id", "span_id"):
            clean.ClearField(name)
        clear_volatile(clean.attributes)
        if clean.body.WhichOneof("value") == "kvlist_value":
            clear_volatile(clean.body.kvlist_value.values)
    return logs


def to_json(message: Message) -> str:
    """The canonical file text of a span (or any OTLP message, such as ``LogsData``)."""
    data = json_format.MessageToDict(message, preserving_proto_field_name=False)
    return "".join(_dump(_in_declaration_order(data, message.DESCRIPTOR), "")) + "\n"


def _dump(value: object, indent: str) -> Iterator[str]:
    """``json.dumps(value, indent=2, ensure_ascii=False)``, but doubles written as Go's protojson writes them.

    Strings are escaped alike by both (only ``"``, ``\\`` and control characters, as ``\\n`` or ``\\u001f``).
    """
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        inner = indent + "  "
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ("\n" if i == 0 else ",\n") + inner + json.dumps(key, ensure_ascii=False) + ": "
            yield from _dump(item, inner)
        yield "\n" + indent + "}"
    elif isinstance(value, list):
        if not value:
            yield "[]"
            return
        inner = indent + "  "
        yield "["
        for i, item in enumerate(value):
            yield ("\n" if i == 0 else ",\n") + inner
            yield from _dump(item, inner)
        yield "\n" + indent + "]"
    elif isinstance(value, float):
        yield go_float(value)
    else:
        yield json.dumps(value, ensure_ascii=False)


def go_float(number: float) -> str:
    """A double as Go's protojson writes it (``internal/encoding/json``'s ``appendFloat`` for 64 bits).

    NaN and the infinities are JSON strings; otherwise the shortest digits that read back to the same
    double (``strconv`` precision -1), in plain form (``0``, ``-0``, ``100000000000000000000``, ``0.000001``),
    or in exponent form when the size is below 1e-6 or from 1e21 on (``1e+21``, ``1e-7``: Go drops the
    exponent's leading zero only when it is negative).
    """
    if math.isnan(number):
        return '"NaN"'
    if math.isinf(number):
        return '"Infinity"' if number > 0 else '"-Infinity"'
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    size = abs(number)
    if size == 0:
        return sign + "0"
    _, digit_tuple, exponent = decimal.Decimal(repr(size)).as_tuple()  # repr: the shortest round-trip digits
    assert isinstance(exponent, int)  # a finite number's (NaN and infinities are handled above)
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)  # value = int(digits) * 10**exponent
    if size < 1e-6 or size >= 1e21:
        power = exponent + len(digits) - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}".replace("e-0", "e-")
    if exponent >= 0:
        return sign + digits + "0" * exponent
    point = len(digits) + exponent  # digits before the decimal point
    if point > 0:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}0.{'0' * -point}{digits}"


def _in_declaration_order(data: dict[str, Any], descriptor: Descriptor | UpbDescriptor) -> dict[str, Any]:
    """Reorder keys as the .proto declares the fields (Go's protojson order, e.g. ``flags`` first)."""
    ordered = {}
    for field in descriptor.fields:
        if field.json_name not in data:
            continue
        value = data[field.json_name]
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry is False:
            if isinstance(value, list):
                value = [_in_declaration_order(item, message_type) for item in value]
            elif isinstance(value, dict):
                value = _in_declaration_order(value, message_type)
        ordered[field.json_name] = value
    return ordered


def from_json(text: str, source: Path | str = "<string>") -> Span:
    """Parse a golden; malformed text names the file and never passes silently."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidGoldenSpanError(
            f"{source}: golden span JSON is nested too deeply to read; {repair_hint(source)}."
        ) from None
    except ValueError as error:
        raise InvalidGoldenSpanError(
            f"{source}: golden span is not valid JSON ({error}); {repair_hint(source)}."
        ) from None
    if not isinstance(data, dict) or "name" not in data:
        raise InvalidGoldenSpanError(
            f"{source}: golden span is JSON but not an OpenTelemetry Span (no 'name'); "
            f"{repair_hint(source)}."
        )
    try:
        return json_format.ParseDict(data, Span())
    except (json_format.ParseError, RecursionError) as error:
        raise InvalidGoldenSpanError(
            f"{source}: golden span is JSON but not an OpenTelemetry Span ({error}); "
            f"{repair_hint(source)}."
        ) from None


def read_golden_text(path: Path) -> str:
    """A golden file's text; a file that is no readable UTF-8 file is one ``InvalidGoldenSpanError``.

    ``FileNotFoundError`` passes through: callers say what a missing golden means.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except UnicodeDecodeError as error:
        raise InvalidGoldenSpanError(
            f"{path}: golden is not UTF-8 text (byte {error.start}: {error.reason}); "
            f"{repair_hint(path)}."
        ) from None
    except OSError as error:  # a directory, a name too long, no permission
        raise InvalidGoldenSpanError(
            f"{path}: cannot read the golden ({error.strerror or error}); replace it with the golden file."
        ) from None


def read_span(path: Path) -> Span:
    """A golden span, parsed once while its file is unchanged (``recorder.file_cache``); each caller gets its own copy."""
    span = Span()
    span.CopyFrom(cached(_parse_span, Path(path)))
    return span


def _parse_span(path: Path) -> Span:
    return from_json(read_golden_text(path), path)


def read_logs(path: Path) -> LogsData:
    """A golden's log records; a missing or malformed file is named. Cached and copied like ``read_span``."""
    logs = LogsData()
    logs.CopyFrom(cached(_parse_logs, Path(path)))
    return logs


def _parse_logs(path: Path) -> LogsData:
    try:
        return json_format.Parse(read_golden_text(path), LogsData())
    except FileNotFoundError:
        raise GoldenSpanMissingError(
            f"golden log records {path} are missing though their span exists; "
            f"{repair_hint(path)}."
        ) from None
    except RecursionError:
        raise InvalidGoldenSpanError(
            f"{path}: golden log records are nested too deeply to read; "
            f"{repair_hint(path)}."
        ) from None
    except (ValueError, json_format.ParseError) as error:
        raise InvalidGoldenSpanError(
            f"{path}: golden log records are not a protojson LogsData ({error}); "
            f"{repair_hint(path)}."
        ) from None


def log_records(logs: LogsData) -> list[LogRecord]:
    return [record for rl in logs.resource_logs for sl in rl.scope_logs for record in sl.log_records]


def write_span(path: Path, span: Span | LogsData) -> None:
    """Write the canonical text atomically (see ``recorder.atomic``)."""
    write_atomic(Path(path), to_json(span))

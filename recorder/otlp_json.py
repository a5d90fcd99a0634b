"""OTLP/JSON and protojson to protobuf messages, in one pass: the one decoder of both.

The collector reads OTLP/JSON export bodies with it, and ``as_span`` spans given as dicts or files. The
dict is walked once, field by field, as each message's descriptor says (tables built once per message type),
and the message is built by protobuf's C constructor from the converted dict; ``json_format.ParseDict`` over
a copy with rewritten ids did the same work several times over, in Python.

The rules are protobuf's JSON mapping plus OTLP/JSON's: keys in lowerCamelCase or as proto field names,
unknown keys ignored, ``null`` meaning the default, enums as names or numbers, 64-bit integers as strings or
numbers, doubles as numbers or ``"NaN"``/``"Infinity"``/``"-Infinity"``, other bytes as base64. Trace and
span ids are hex in OTLP/JSON (``HEX``: exactly 16 or 8 bytes, or empty); goldens hold them as protojson's
base64 (``HEX_OR_BASE64``: hex when the length is a hex id's, else base64). Anything else is one
``InvalidOTLPError`` naming the field's path.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from testopeninference.errors import InvalidOTLPError

if TYPE_CHECKING:  # what a generated message's DESCRIPTOR is with the upb backend
    from google._upb._message import Descriptor as UpbDescriptor, FieldDescriptor as UpbFieldDescriptor

M = TypeVar("M", bound=Message)

HEX = "hex"
HEX_OR_BASE64 = "hex-or-base64"

_ID_SIZES = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_INTEGER_RANGES = {  # each integer type's smallest and largest value
    **dict.fromkeys((FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64),
                    (-(2**63), 2**63 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64), (0, 2**64 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32),
                    (-(2**31), 2**31 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32), (0, 2**32 - 1)),
}

Convert = Callable[[Any], Any]
Table = dict[str, tuple[str, Convert]]


class _Problem(Exception):
    """A field's value is wrong; carries the path, outermost last, while the walk unwinds."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def message_from_json(document: Any, message_type: type[M], ids: str = HEX) -> M:
    """``message_type`` from a parsed JSON object; ``InvalidOTLPError`` naming the field when it is not one."""
    try:
        return message_type(**_fields(document, _table(message_type.DESCRIPTOR, ids)))
    except _Problem as problem:
        where = "".join(reversed(problem.path)).lstrip(".") or "the document"
        raise InvalidOTLPError(f"{where}: {problem.reason}") from None
    except RecursionError:
        raise InvalidOTLPError("nested too deeply") from None
    except (TypeError, ValueError) as error:  # what protobuf's constructor refuses (an int32 out of range)
        raise InvalidOTLPError(str(error)) from None


def _fields(document: Any, table: Table) -> dict[str, Any]:
    """The constructor's keyword arguments for one message: the known keys, converted; null and unknown keys skipped."""
    if type(document) is not dict:
        raise _Problem(f"expected an object, not {_shown(document)}")
    fields = {}
    for key, value in document.items():
        entry = table.get(key)
        if entry is None or value is None:
            continue
        name, convert = entry
        try:
            fields[name] = convert(value)
        except _Problem as problem:
            problem.path.append("." + key)
            raise
        except (TypeError, ValueError, OverflowError) as error:
            refused = _Problem(str(error))
            refused.path.append("." + key)
            raise refused from None
    return fields


_TABLES: dict[tuple[str, str], Table] = {}


def _table(descriptor: Descriptor | UpbDescriptor, ids: str) -> Table:
    """Each JSON spelling of each field of ``descriptor`` -> (proto field name, converter); built once."""
    known = _TABLES.get((descriptor.full_name, ids))
    if known is not None:
        return known
    table: Table = {}
    _TABLES[(descriptor.full_name, ids)] = table  # before the fields: AnyValue holds AnyValues
    for field in descriptor.fields:
        convert = _converter(field, ids)
        if field.is_repeated:
            convert = _repeated(convert)
        table[field.name] = table[field.json_name] = (field.name, convert)
    return table


def _converter(field: FieldDescriptor | UpbFieldDescriptor, ids: str) -> Convert:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None  # a message field has a message type
        sub_table = _table(field.message_type, ids)
        return lambda value: _fields(value, sub_table)
    if kind == FieldDescriptor.TYPE_STRING:
        return _string
    if kind == FieldDescriptor.TYPE_BOOL:
        return _bool
    if kind in _INTEGER_RANGES:
        return _integer(*_INTEGER_RANGES[kind])
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _float
    if kind == FieldDescriptor.TYPE_ENUM:
        return _enum(field.enum_type)
    if field.name in _ID_SIZES:
        return (_hex_id if ids == HEX else _hex_or_base64_id)(_ID_SIZES[field.name], field.json_name)
    return _base64


def _repeated(convert: Convert) -> Convert:
    def each(values: Any) -> list[Any]:
        if type(values) is not list:
            raise _Problem(f"expected a list, not {_shown(values)}")
        converted = []
        for index, value in enumerate(values):
            try:
                if value is None:
                    raise _Problem("null is not allowed in a list")
                converted.append(convert(value))
            except _Problem as problem:
                problem.path.append(f"[{index}]")
                raise
        return converted

    return each


def _string(value: Any) -> str:
    if type(value) is not str:
        raise _Problem(f"expected a string, not {_shown(value)}")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _Problem(f"expected true or false, not {_shown(value)}")
    return value


def _integer(smallest: int, largest: int) -> Convert:
    def convert(value: Any) -> int:
        if type(value) is int:
            number = value
        elif type(value) is str and value.lstrip("-").isdigit() and value.isascii():
            number = int(value)
        elif type(value) is float and value.is_integer():
            number = int(value)
        else:
            raise _Problem(f"expected an integer (a number or a string of digits), not {_shown(value)}")
        if not smallest <= number <= largest:
            raise _Problem(f"{number} is out of range ({smallest} to {largest})")
        return number

    return convert


def _float(value: Any) -> float:
    if type(value) in (int, float):
        return float(value)
    if type(value) is str:
        special = _SPECIAL_FLOATS.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise _Problem(f"expected a number, not {_shown(value)}")


def _enum(enum_type: Any) -> Convert:
    numbers = {name: value.number for name, value in enum_type.values_by_name.items()}

    def convert(value: Any) -> int:
        if type(value) is int:
            return value
        if type(value) is str and value in numbers:
            return int(numbers[value])
        raise _Problem(f"{_shown(value)} is not a value of {enum_type.name} ({', '.join(numbers)}, or a number)")

    return convert


def _hex_id(size: int, key: str) -> Convert:
    def convert(value: Any) -> bytes:
        if type(value) is str and len(value) in (0, 2 * size) and _HEX_DIGITS.issuperset(value):
            return bytes.fromhex(value)
        raise _Problem(f"{key} must be a {2 * size}-digit hex string in OTLP/JSON, not {_shown(value)}")

    return convert


def _hex_or_base64_id(size: int, key: str) -> Convert:
    def convert(value: Any) -> bytes:
        if type(value) is str and len(value) == 2 * size and _HEX_DIGITS.issuperset(value):
            return bytes.fromhex(value)
        return _base64(value)

    return convert


def _base64(value: Any) -> bytes:
    """Standard or URL-safe base64, padded or not, as protobuf's JSON mapping reads bytes."""
    if type(value) is str:
        try:
            return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            pass
    raise _Problem(f"expected base64 bytes, not {_shown(value)}")


def _shown(value: Any) -> str:
    """A value for an error message: strings and numbers cut at 80 characters, objects and lists by kind."""
    if isinstance(value, (dict, list)):
        return type(value).__name__
    return repr(value)[:80]

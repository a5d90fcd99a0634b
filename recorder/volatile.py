"""Values that differ on every run, in one place: cleared when goldens are written, ignored when compared.

Span fields (ids, times) are listed in ``recorder.span_file.VOLATILE_FIELDS``.
Some attributes carry run-dependent values too: the port the fake server
happened to get, a measured duration. Their keys stay in the golden (so it
shows they exist) with a zero value, and comparisons skip them.
"""

from __future__ import annotations

import re

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

VOLATILE_ATTRIBUTES = frozenset(
    {
        "server.port",  # where the fake OpenAI server listened
        "gen_ai.response.time_to_first_chunk",  # seconds, measured
    }
)

# A loopback address with a port, inside any string attribute (e.g. an API base URL).
_LOOPBACK_PORT = re.compile(r"\b(127\.0\.0\.1|localhost|\[::1\]):\d+")
LOOPBACK_PLACEHOLDER = r"\1:<port>"


def without_loopback_ports(text: str) -> str:
    return _LOOPBACK_PORT.sub(LOOPBACK_PLACEHOLDER, text)


def clear_volatile(attributes: "list[KeyValue]") -> None:
    """Zero the volatile attributes and mask loopback ports in strings, in place."""
    for attribute in attributes:
        _clear_value(attribute.value, volatile=attribute.key in VOLATILE_ATTRIBUTES)


def _clear_value(value: AnyValue, volatile: bool) -> None:
    kind = value.WhichOneof("value")
    if volatile and kind in ("int_value", "double_value"):
        setattr(value, kind, 0)
    elif kind == "string_value":
        value.string_value = without_loopback_ports(value.string_value)
    elif kind == "array_value":
        for item in value.array_value.values:
            _clear_value(item, volatile)
    elif kind == "kvlist_value":
        clear_volatile(value.kvlist_value.values)

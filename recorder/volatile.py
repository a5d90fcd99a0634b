"""Values that differ on every run, in one place: cleared when goldens are written, ignored when compared.

Span fields (ids, times) are listed in ``recorder.span_file.VOLATILE_FIELDS``.
Some attributes carry run-dependent values too: the port the fake server
happened to get, a measured duration. Their keys stay in the golden (so it
shows they exist) with a zero value, and comparisons skip them.
"""

from __future__ import annotations

import re
from typing import Iterable

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


# A Python object's repr, e.g. OpenInference's output.value of a binary (speech) reply:
# "<openai._legacy_response.HttpxBinaryResponseContent object at 0x7f3d7af5ca90>".
_OBJECT_ADDRESS = re.compile(r"\b(object at 0x)[0-9a-fA-F]+")
ADDRESS_PLACEHOLDER = r"\1<address>"


def stable_text(text: str) -> str:
    """A string attribute without its run-dependent parts: loopback ports and object addresses."""
    return _OBJECT_ADDRESS.sub(ADDRESS_PLACEHOLDER, without_loopback_ports(text))


# Python tracebacks depend on the machine and on the Python that ran: absolute paths, and below each
# frame's source line, caret lines (3.11+) or elisions such as "...<55 lines>..." (3.13+).
STACKTRACE_ATTRIBUTE = "exception.stacktrace"
_INSTALLED_PATH = re.compile(r'File "[^"]*[/\\](?:site|dist)-packages[/\\]')
_STDLIB_PATH = re.compile(r'File "[^"]*[/\\]lib[/\\]python3(?:\.\d+)?[/\\]')
_FRAME = '  File "'
_FRAME_DETAIL = "    "


def stable_stacktrace(text: str) -> str:
    """A traceback that reads the same on every machine and Python 3.10 to 3.13.

    Paths become ``site-packages/...`` (or ``stdlib/...``); of what Python prints below a frame only the
    first line, the source line, is kept. Exception lines and chaining messages stay as they are.
    """
    text = _STDLIB_PATH.sub('File "stdlib/', _INSTALLED_PATH.sub('File "site-packages/', text))
    kept, detail_lines = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith(_FRAME):
            detail_lines = 0
        elif detail_lines is not None and line.startswith(_FRAME_DETAIL):
            detail_lines += 1
            if detail_lines > 1:
                continue
        else:
            detail_lines = None  # past the frames: an exception line, kept whatever its indent
        kept.append(line)
    return "".join(kept)


def clear_volatile(attributes: Iterable[KeyValue]) -> None:
    """Zero the volatile attributes, mask loopback ports in strings and make stack traces stable, in place."""
    for attribute in attributes:
        _clear_value(attribute.value, volatile=attribute.key in VOLATILE_ATTRIBUTES)
        if attribute.key == STACKTRACE_ATTRIBUTE and attribute.value.WhichOneof("value") == "string_value":
            attribute.value.string_value = stable_stacktrace(attribute.value.string_value)


def _clear_value(value: AnyValue, volatile: bool) -> None:
    kind = value.WhichOneof("value")
    if volatile and kind in ("int_value", "double_value"):
        setattr(value, kind, 0)
    elif kind == "string_value":
        value.string_value = stable_text(value.string_value)
    elif kind == "array_value":
        for item in value.array_value.values:
            _clear_value(item, volatile)
    elif kind == "kvlist_value":
        clear_volatile(value.kvlist_value.values)

"""The OpenInference attribute catalogue: every key the conventions define, with the type of its value.

Written from the OpenInference semantic conventions
(https://arize-ai.github.io/openinference/spec/semantic_conventions.html, ``spec/semantic_conventions.md``
of github.com/Arize-ai/openinference): the "Reserved Attributes" table gives each key's type, and
"List of objects" keys are flattened as ``<prefix>.<index>.<item key>`` with zero-based indices.
Key names were checked against ``openinference-semantic-conventions`` 0.1.42, the version the proxy pins.

Only the validator (``openinference_spec``) reads this module; it holds data and the value-type check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Union

from opentelemetry.proto.common.v1.common_pb2 import AnyValue


class ValueType(str, Enum):
    """What a key's value must be; the value reads as the end of "expected ..."."""

    STRING = "a string"
    JSON_STRING = "a string holding JSON"
    INT = "an integer"
    NUMBER = "a number"  # the table's "Float": an integer is a number too (SDKs write 0 as an int)
    BOOL = "a boolean"
    STRING_OR_INT = "a string or an integer"
    STRING_ARRAY = "an array of strings"
    FLOAT_ARRAY = "an array of floats"


@dataclass(frozen=True)
class ListOf:
    """A "List of objects" key: set as ``<key>.<index>.<item key>``, never as one attribute."""

    item: Mapping[str, Field]


Field = Union[ValueType, ListOf]

REDACTED = "__REDACTED__"
"""What instrumentations write instead of a hidden value (``OPENINFERENCE_HIDE_EMBEDDINGS_VECTORS`` and kin)."""

S = ValueType.STRING

IMAGE: Mapping[str, Field] = {"image.url": S}
AUDIO: Mapping[str, Field] = {"audio.url": S, "audio.mime_type": S, "audio.transcript": S}
DOCUMENT: Mapping[str, Field] = {
    "document.id": ValueType.STRING_OR_INT,
    "document.score": ValueType.NUMBER,
    "document.content": S,
    "document.metadata": S,  # "JSON String", but the spec's own example is a Python dict repr
    "document.url": S,
    "document.mime_type": S,
    "document.name": S,
}
TOOL_CALL: Mapping[str, Field] = {
    "tool_call.id": S,
    "tool_call.function.name": S,
    # "JSON string", but it is the model's output recorded verbatim, and models do write broken JSON
    "tool_call.function.arguments": S,
    "tool_call.reasoning_signature": S,
}
MESSAGE_CONTENT: Mapping[str, Field] = {
    "message_content.type": S,
    "message_content.text": S,
    "message_content.id": S,
    "message_content.signature": S,
    "message_content.data": S,
    "message_content.encrypted_content": S,
    **{f"message_content.image.{key}": value for key, value in IMAGE.items()},
    **{f"message_content.audio.{key}": value for key, value in AUDIO.items()},
    "message_content.video.video.url": S,
    **{f"message_content.document.{key}": value for key, value in DOCUMENT.items()},
    **TOOL_CALL,  # an ordered "tool_use" content item
}
MESSAGE: Mapping[str, Field] = {
    "message.role": S,
    "message.content": S,
    "message.contents": ListOf(MESSAGE_CONTENT),
    "message.name": S,
    "message.tool_call_id": S,
    "message.tool_calls": ListOf(TOOL_CALL),
    "message.function_call_name": S,
    "message.function_call_arguments_json": S,
}
TOOL: Mapping[str, Field] = {"tool.json_schema": ValueType.JSON_STRING, "tool.name": S, "tool.description": S}
EMBEDDING: Mapping[str, Field] = {"embedding.text": S, "embedding.vector": ValueType.FLOAT_ARRAY}

TOKEN_COUNT_KEYS = ("llm.token_count.prompt", "llm.token_count.completion", "llm.token_count.total")
COST_KEYS = ("llm.cost.prompt", "llm.cost.completion", "llm.cost.total")

SPAN_KEYS: Mapping[str, Field] = {
    "openinference.span.kind": S,
    "input.value": S,
    "input.mime_type": S,
    "output.value": S,
    "output.mime_type": S,
    "input.images": ListOf(IMAGE),
    "output.images": ListOf(IMAGE),
    "input.documents": ListOf(DOCUMENT),
    "output.documents": ListOf(DOCUMENT),
    **{f"{side}.{key}": value for side in ("input", "output") for key, value in AUDIO.items()},
    "llm.system": S,
    "llm.provider": S,
    "llm.model_name": S,
    "llm.request.model_name": S,
    "llm.response.model_name": S,
    "llm.invocation_parameters": ValueType.JSON_STRING,  # every example in the spec is JSON
    "llm.finish_reason": S,
    "llm.function_call": S,
    "llm.input_messages": ListOf(MESSAGE),
    "llm.output_messages": ListOf(MESSAGE),
    "llm.tools": ListOf(TOOL),
    "llm.prompts": ListOf({"prompt.text": S}),
    "llm.choices": ListOf({"completion.text": S}),
    "llm.prompt_template.template": S,
    "llm.prompt_template.variables": S,
    "llm.prompt_template.version": S,
    **{key: ValueType.INT for key in TOKEN_COUNT_KEYS},
    **{key: ValueType.NUMBER for key in COST_KEYS},
    "embedding.model_name": S,
    "embedding.invocation_parameters": ValueType.JSON_STRING,
    "embedding.embeddings": ListOf(EMBEDDING),
    "embedding.text": S,
    "embedding.vector": ValueType.FLOAT_ARRAY,
    "retrieval.documents": ListOf(DOCUMENT),
    "reranker.input_documents": ListOf(DOCUMENT),
    "reranker.output_documents": ListOf(DOCUMENT),
    "reranker.model_name": S,
    "reranker.query": S,
    "reranker.top_k": ValueType.INT,
    "tool.name": S,
    "tool.description": S,
    "tool.json_schema": ValueType.JSON_STRING,
    "tool.parameters": S,
    "tool.id": S,
    "session.id": S,
    "user.id": S,
    "metadata": S,
    "tag.tags": ValueType.STRING_ARRAY,
    "agent.name": S,
    "graph.node.id": S,
    "graph.node.name": S,
    "graph.node.parent_id": S,
    "prompt.vendor": S,
    "prompt.id": S,
    "prompt.url": S,
}

OPEN_PREFIXES: Mapping[str, ValueType] = {
    "llm.token_count.prompt_details.": ValueType.INT,
    "llm.token_count.completion_details.": ValueType.INT,
    "llm.cost.prompt_details.": ValueType.NUMBER,
    "llm.cost.completion_details.": ValueType.NUMBER,
}
"""Namespaces whose keys the conventions leave open ("each detail should be a separate attribute with this prefix")."""

CLOSED_NAMESPACES = ("llm.token_count.", "llm.cost.")
"""Namespaces the conventions define completely: any other key in them is a misspelling."""

EXCEPTION_EVENT_KEYS: Mapping[str, ValueType] = {
    "exception.type": S,
    "exception.message": S,
    "exception.stacktrace": S,
    "exception.escaped": ValueType.BOOL,
}


def value_problem(value: AnyValue, expected: ValueType) -> str | None:
    """Why ``value`` is not ``expected`` ("expected ..., got ..."), or None when it is."""
    kind = value.WhichOneof("value")
    if _matches(value, kind, expected):
        return None
    if expected is ValueType.JSON_STRING and kind == "string_value":
        return f"expected {expected.value}, got a string that is not JSON ({json_error(value.string_value)})"
    return f"expected {expected.value}, got {describe(value)}"


def describe(value: AnyValue) -> str:
    """A value's type and a short preview, for problem lines."""
    kind = value.WhichOneof("value")
    if kind is None:
        return "no value"
    if kind == "array_value":
        kinds = sorted({item.WhichOneof("value") or "empty" for item in value.array_value.values})
        return f"an array of {', '.join(kinds) or 'nothing'}".replace("_value", "")
    names = {"string_value": "a string", "int_value": "an integer", "double_value": "a float",
             "bool_value": "a boolean", "kvlist_value": "a key-value list", "bytes_value": "bytes"}
    preview = repr(getattr(value, kind)) if kind != "kvlist_value" else ""
    if len(preview) > 60:
        preview = preview[:57] + "..."
    return f"{names[kind]} ({preview})" if preview else names[kind]


def _matches(value: AnyValue, kind: str | None, expected: ValueType) -> bool:
    if expected is ValueType.STRING:
        return kind == "string_value"
    if expected is ValueType.JSON_STRING:
        return kind == "string_value" and json_error(value.string_value) is None
    if expected is ValueType.INT:
        return kind == "int_value"
    if expected is ValueType.NUMBER:
        return kind in ("int_value", "double_value")
    if expected is ValueType.BOOL:
        return kind == "bool_value"
    if expected is ValueType.STRING_OR_INT:
        return kind in ("string_value", "int_value")
    if expected is ValueType.STRING_ARRAY:
        return kind == "array_value" and all(item.HasField("string_value") for item in value.array_value.values)
    if kind == "string_value":  # FLOAT_ARRAY hidden by the instrumentation's privacy setting
        return value.string_value == REDACTED
    return kind == "array_value" and all(
        item.WhichOneof("value") in ("double_value", "int_value") for item in value.array_value.values
    )


def json_error(text: str) -> str | None:
    """Why ``text`` is not JSON, or None when it parses."""
    try:
        json.loads(text)
    except ValueError as error:
        return str(error)
    except RecursionError:
        return "nested too deeply"
    return None

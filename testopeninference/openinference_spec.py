"""Is a span valid OpenInference? ``validate_openinference(span)`` lists what is not, one line per problem.

This is the ``spec`` level of gateway conformance: it holds a gateway's span to the OpenInference
semantic conventions themselves, whatever the reference instrumentation chose to record. Each rule
below comes from the specification (https://arize-ai.github.io/openinference/spec/, the ``spec/``
folder of github.com/Arize-ai/openinference); what the specification only recommends (``llm.model_name``,
``input.value``, token counts, messages on an LLM span) is never a problem when absent.

- Span kind (semantic conventions, "Span Kinds"): ``openinference.span.kind`` "is required for all
  OpenInference spans", and its value is one of the span kinds.
- Required keys per kind (LLM Spans, "Required Attributes"): "All LLM spans MUST include"
  ``openinference.span.kind`` and ``llm.system``. EMBEDDING spans (Embedding Spans) require only the
  kind, and "the span name MUST be ``CreateEmbeddings``". CHAIN, TOOL, RETRIEVER, RERANKER and the
  other kinds require only the kind.
- Value types, key layouts and list indices: ``openinference_keys`` and ``openinference_layout``.
- MIME types (``input.mime_type``/``output.mime_type``, "MIME type representing the format of
  ``input.value``"): ``text/plain`` or ``application/json``, and with ``application/json`` "the value
  is a string representing a JSON object", so it must parse as JSON.
- Token counts ("All token count attributes store integer values representing the count of
  tokens"): integers, never negative, and ``llm.token_count.total`` ("Total number of tokens,
  including prompt and completion") equal to prompt + completion when all three are set.
- Errors: an ERROR status carries a description and the exception recorded as an ``exception``
  event with ``exception.type`` and ``exception.message`` (the conventions reserve these keys and
  type ``exception.escaped`` as Boolean; OpenTelemetry's ``record_exception`` writes them all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from testopeninference.errors import InvalidOpenInferenceSpanError
from testopeninference.openinference_keys import EXCEPTION_EVENT_KEYS, TOKEN_COUNT_KEYS, json_error, value_problem
from testopeninference.openinference_layout import layout_problems
from testopeninference.span_input import as_span

SPAN_KINDS = (
    "LLM", "EMBEDDING", "CHAIN", "RETRIEVER", "RERANKER", "TOOL", "AGENT", "GUARDRAIL", "EVALUATOR", "PROMPT",
    "DECISION", "UNKNOWN",
)
"""The values of ``OpenInferenceSpanKindValues`` (openinference-semantic-conventions 0.1.42)."""

REQUIRED_KEYS: Mapping[str, tuple[str, ...]] = {"LLM": ("llm.system",)}
"""Keys a span of a kind MUST carry besides ``openinference.span.kind`` (LLM Spans, "Required Attributes")."""

SPAN_NAMES: Mapping[str, str] = {"EMBEDDING": "CreateEmbeddings"}
"""Span names the conventions fix per kind (Embedding Spans, "Span Name")."""

MIME_TYPES = ("text/plain", "application/json")
"""The values of ``OpenInferenceMimeTypeValues``."""

SPEC_URL = "https://arize-ai.github.io/openinference/spec/"


def validate_openinference(span: Any) -> list[str]:
    """The ways ``span`` breaks the OpenInference conventions, one line each naming the key; empty when valid.

    ``span``: anything ``as_span`` takes (a ``Span``, a collected span, protojson or OTLP/JSON as a
    dict, or the path of a JSON file).
    """
    message = as_span(span)
    attributes = {item.key: item.value for item in message.attributes}
    return [
        *_duplicate_problems(message),
        *_kind_problems(message, attributes),
        *layout_problems(attributes),
        *_mime_type_problems(attributes),
        *_token_count_problems(attributes),
        *_error_problems(message),
    ]


def assert_valid_openinference(span: Any) -> None:
    """Raise ``InvalidOpenInferenceSpanError`` listing every problem unless ``span`` is valid OpenInference."""
    message = as_span(span)
    problems = validate_openinference(message)
    if problems:
        raise InvalidOpenInferenceSpanError(message.name, problems)


def _duplicate_problems(span: Span) -> list[str]:
    counts = Counter(item.key for item in span.attributes)
    return [f"{key}: set {count} times (a span holds each key once)" for key, count in sorted(counts.items()) if count > 1]


def _kind_problems(span: Span, attributes: Mapping[str, AnyValue]) -> list[str]:
    if "openinference.span.kind" not in attributes:
        return [f"openinference.span.kind: missing (required on every OpenInference span: {', '.join(SPAN_KINDS)})"]
    if not attributes["openinference.span.kind"].HasField("string_value"):
        return []  # the wrong type is a layout problem
    kind = attributes["openinference.span.kind"].string_value
    if kind not in SPAN_KINDS:
        return [f"openinference.span.kind: {kind!r} is not a span kind (one of {', '.join(SPAN_KINDS)})"]
    problems = [f"{key}: missing (required on {kind} spans)" for key in REQUIRED_KEYS.get(kind, ()) if key not in attributes]
    name = SPAN_NAMES.get(kind)
    if name is not None and span.name != name:
        problems.append(f"name: {span.name!r}, but {kind} spans must be named {name!r}")
    return problems


def _mime_type_problems(attributes: Mapping[str, AnyValue]) -> list[str]:
    problems = []
    for side in ("input", "output"):
        mime_type = attributes.get(f"{side}.mime_type")
        if mime_type is None or not mime_type.HasField("string_value"):
            continue  # absent means plain text; a wrong type is a layout problem
        if mime_type.string_value not in MIME_TYPES:
            problems.append(f"{side}.mime_type: {mime_type.string_value!r} is not {' or '.join(MIME_TYPES)}")
            continue
        value = attributes.get(f"{side}.value")
        if mime_type.string_value == "application/json" and value is not None and value.HasField("string_value"):
            error = json_error(value.string_value)
            if error:
                problems.append(f"{side}.value: {side}.mime_type is application/json, but the value is not JSON ({error})")
    return problems


def _token_count_problems(attributes: Mapping[str, AnyValue]) -> list[str]:
    counts = {key: value.int_value for key, value in attributes.items()
              if key.startswith("llm.token_count.") and value.HasField("int_value")}
    problems = [f"{key}: {count} is negative (a count of tokens)" for key, count in counts.items() if count < 0]
    if all(key in counts for key in TOKEN_COUNT_KEYS):
        prompt, completion, total = (counts[key] for key in TOKEN_COUNT_KEYS)
        if prompt + completion != total:
            problems.append(f"llm.token_count.total: {total}, but llm.token_count.prompt + llm.token_count.completion"
                            f" = {prompt} + {completion} = {prompt + completion}")
    return problems


def _error_problems(span: Span) -> list[str]:
    events = [event for event in span.events if event.name == "exception"]
    problems = []
    for event in events:
        for item in event.attributes:
            expected = EXCEPTION_EVENT_KEYS.get(item.key)
            problem = value_problem(item.value, expected) if expected else None
            if problem:
                problems.append(f"{item.key} (exception event): {problem}")
    if span.status.code != Status.STATUS_CODE_ERROR:
        return problems
    if not span.status.message.strip():
        problems.append("status.message: empty on an ERROR status (the description says what failed)")
    if not events:
        problems.append("events: ERROR status without an 'exception' event (exception.type, exception.message)")
    elif not any(_has_type_and_message(event.attributes) for event in events):
        keys = {item.key for item in events[-1].attributes}
        problems += [f"{key} (exception event): missing" for key in ("exception.type", "exception.message")
                     if key not in keys]
    return problems


def _has_type_and_message(attributes: Iterable[KeyValue]) -> bool:
    keys = {item.key for item in attributes}
    return {"exception.type", "exception.message"} <= keys

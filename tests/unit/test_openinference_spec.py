"""validate_openinference: the goldens are valid OpenInference, and each rule of the spec catches its break.

Spans that break a rule are valid goldens (or the spec's own examples) with one thing changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from google.protobuf.json_format import MessageToDict

from testopeninference import InvalidOpenInferenceSpanError, assert_valid_openinference, validate_openinference
from testopeninference.errors import TestOpenInferenceError
from testopeninference.span_input import as_span
from tests.helpers import SPANS

ESCAPED_AS_STRING = "exception.escaped (exception event): expected a boolean, got a string ('False')"
INPUT_MESSAGES_FROM_ONE = "llm.input_messages: indices 1 are not contiguous from 0 (missing 0)"

GOLDENS_THAT_BREAK_THE_SPEC = {
    # opentelemetry-sdk's Span.record_exception writes str(escaped); the conventions type exception.escaped Boolean.
    **{name: [ESCAPED_AS_STRING] for name in (
        "chat-bad-request", "chat-no-messages", "chat-unknown-model", "completion-bad-request",
        "completion-unknown-model", "embeddings-bad-request", "embeddings-max-tokens", "embeddings-unknown-model",
        "anthropic-messages-bad-request", "anthropic-messages-overloaded", "anthropic-messages-unknown-model",
        "cohere-rerank-bad-request",
    )},
    # openinference-instrumentation-openai keeps index 0 of the Responses API's input messages for the
    # instructions, even when there are none: the list starts at 1, not at 0 as flattened lists must.
    **{name: [INPUT_MESSAGES_FROM_ONE] for name in ("responses-basic", "responses-streaming", "responses-tools")},
}
OPENINFERENCE_GOLDENS = sorted(path.stem for path in SPANS.glob("*.json"))  # the other conventions are in subfolders


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_value(item) for item in value]))
    return AnyValue(string_value=value)


def _span(attributes: dict[str, Any], name: str = "ChatCompletion") -> Span:
    return Span(name=name, attributes=[KeyValue(key=key, value=_value(value)) for key, value in attributes.items()])


def _golden(name: str) -> Span:
    return as_span(SPANS / f"{name}.json")


def _set(span: Span, key: str, value: Any) -> Span:
    for item in span.attributes:
        if item.key == key:
            item.value.CopyFrom(_value(value))
            return span
    span.attributes.append(KeyValue(key=key, value=_value(value)))
    return span


def _remove(span: Span, *keys: str) -> Span:
    kept = [item for item in span.attributes if item.key not in keys]
    del span.attributes[:]
    span.attributes.extend(kept)
    return span


def _rename(span: Span, old: str, new: str) -> Span:
    for item in span.attributes:
        if item.key == old:
            item.key = new
    return span


# The goldens


def test_the_openinference_goldens_are_the_top_level_files():
    assert len(OPENINFERENCE_GOLDENS) >= 40
    assert all(_golden(name).attributes[-1].key == "openinference.span.kind" for name in OPENINFERENCE_GOLDENS)


@pytest.mark.parametrize("name", [name for name in OPENINFERENCE_GOLDENS if name not in GOLDENS_THAT_BREAK_THE_SPEC])
def test_every_openinference_golden_is_valid(name):
    assert validate_openinference(SPANS / f"{name}.json") == []


@pytest.mark.parametrize("name", sorted(GOLDENS_THAT_BREAK_THE_SPEC))
def test_goldens_that_break_the_spec_break_only_what_is_listed(name):
    assert validate_openinference(SPANS / f"{name}.json") == GOLDENS_THAT_BREAK_THE_SPEC[name]


# The spec's own examples (Embedding Spans "Text Input"; LLM Spans tool-call example, flattened)

SPEC_EMBEDDING_EXAMPLE = {
    "openinference.span.kind": "EMBEDDING",
    "embedding.model_name": "text-embedding-3-small",
    "embedding.invocation_parameters": '{"model": "text-embedding-3-small", "encoding_format": "float"}',
    "input.value": '{"input": "hello world", "model": "text-embedding-3-small", "encoding_format": "float"}',
    "input.mime_type": "application/json",
    "output.value": '{"data": [{"embedding": [0.1, 0.2, 0.3], "index": 0}], "model": "text-embedding-3-small",'
                    ' "usage": {"prompt_tokens": 2, "total_tokens": 2}}',
    "output.mime_type": "application/json",
    "embedding.embeddings.0.embedding.text": "hello world",
    "embedding.embeddings.0.embedding.vector": [0.1, 0.2, 0.3],
    "llm.token_count.prompt": 2,
    "llm.token_count.total": 2,
}
SPEC_LLM_EXAMPLE = {
    "openinference.span.kind": "LLM",
    "llm.system": "openai",
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": "You are a Shakespearean writing assistant.",
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.content": "what is 23 times 87",
    "llm.model_name": "gpt-3.5-turbo-0613",
    "llm.invocation_parameters": '{"model": "gpt-3.5-turbo-0613", "temperature": 0.1, "max_tokens": null}',
    "output.value": '{"tool_calls": [{"id": "call_Re47Qyh8AggDGEEzlhb4fu7h", "function": {"arguments":'
                    ' "{\\n  \\"a\\": 23,\\n  \\"b\\": 87\\n}", "name": "multiply"}, "type": "function"}]}',
    "output.mime_type": "application/json",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "multiply",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{\n  "a": 23,\n  "b": 87\n}',
    "llm.token_count.prompt": 229,
    "llm.token_count.completion": 21,
    "llm.token_count.total": 250,
}
SPEC_MULTIMODAL_EXAMPLE = {
    "openinference.span.kind": "LLM",
    "llm.system": "openai",
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.contents.0.message_content.type": "text",
    "llm.input_messages.0.message.contents.0.message_content.text": "What objects do you see in this image?",
    "llm.input_messages.0.message.contents.1.message_content.type": "image",
    "llm.input_messages.0.message.contents.1.message_content.image.image.url": "https://example.com/photo.jpg",
}


def test_the_specs_embedding_example_is_valid():
    assert validate_openinference(_span(SPEC_EMBEDDING_EXAMPLE, name="CreateEmbeddings")) == []


def test_the_specs_llm_and_multimodal_examples_are_valid():
    assert validate_openinference(_span(SPEC_LLM_EXAMPLE)) == []
    assert validate_openinference(_span(SPEC_MULTIMODAL_EXAMPLE)) == []


@pytest.mark.parametrize("kind", ["CHAIN", "TOOL", "RETRIEVER", "RERANKER", "AGENT"])
def test_other_kinds_need_only_the_kind(kind):
    """The Traces page's CHAIN span: plain-text input and output, nothing else."""
    attributes = {"openinference.span.kind": kind, "input.value": "Is anybody there?", "input.mime_type": "text/plain",
                  "output.value": "Yes, I am here.", "output.mime_type": "text/plain"}
    assert validate_openinference(_span(attributes, name="query")) == []


def test_a_retriever_span_with_documents_is_valid():
    attributes = {"openinference.span.kind": "RETRIEVER", "retrieval.documents.0.document.id": "1",
                  "retrieval.documents.0.document.score": 0.9, "retrieval.documents.0.document.content": "text",
                  "retrieval.documents.1.document.id": 2, "retrieval.documents.1.document.score": 1}
    assert validate_openinference(_span(attributes, name="retrieve")) == []


# Span kind and required keys


def test_missing_span_kind():
    problems = validate_openinference(_remove(_golden("chat-basic"), "openinference.span.kind"))
    assert problems == ["openinference.span.kind: missing (required on every OpenInference span: LLM, EMBEDDING, CHAIN,"
                        " RETRIEVER, RERANKER, TOOL, AGENT, GUARDRAIL, EVALUATOR, PROMPT, DECISION, UNKNOWN)"]


def test_a_kind_that_is_not_one():
    problems = validate_openinference(_set(_golden("chat-basic"), "openinference.span.kind", "llm"))
    assert problems == ["openinference.span.kind: 'llm' is not a span kind (one of LLM, EMBEDDING, CHAIN, RETRIEVER,"
                        " RERANKER, TOOL, AGENT, GUARDRAIL, EVALUATOR, PROMPT, DECISION, UNKNOWN)"]


def test_an_llm_span_requires_llm_system():
    problems = validate_openinference(_span({k: v for k, v in SPEC_LLM_EXAMPLE.items() if k != "llm.system"}))
    assert problems == ["llm.system: missing (required on LLM spans)"]


def test_recommended_keys_are_no_problem_when_absent():
    span = _remove(_golden("chat-tools"), "llm.model_name", "llm.invocation_parameters", "input.value", "input.mime_type",
                   "output.value", "output.mime_type", "llm.token_count.prompt", "llm.token_count.completion",
                   "llm.token_count.total", "llm.input_messages.0.message.role", "llm.input_messages.0.message.content")
    assert validate_openinference(span) == []
    assert validate_openinference(_span({"openinference.span.kind": "EMBEDDING"}, name="CreateEmbeddings")) == []


def test_an_embedding_span_has_the_specs_name():
    span = _golden("embeddings-basic")
    span.name = "embeddings"
    assert validate_openinference(span) == ["name: 'embeddings', but EMBEDDING spans must be named 'CreateEmbeddings'"]


# Value types


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("llm.token_count.total", "20", "expected an integer, got a string ('20')"),
    ("llm.token_count.prompt_details.cache_read", 0.0, "expected an integer, got a float (0.0)"),
    ("llm.system", 1, "expected a string, got an integer (1)"),
    ("openinference.span.kind", 1, "expected a string, got an integer (1)"),
    ("llm.model_name", ["gpt-4.1-nano"], "expected a string, got an array of string"),
    ("llm.invocation_parameters", "{model: gpt}",
     "expected a string holding JSON, got a string that is not JSON (Expecting property name enclosed in double"
     " quotes: line 1 column 2 (char 1))"),
    ("llm.input_messages.0.message.role", True, "expected a string, got a boolean (True)"),
    ("llm.cost.total", "0.01", "expected a number, got a string ('0.01')"),
    ("tag.tags", ["a", 1], "expected an array of strings, got an array of int, string"),
])
def test_a_value_of_the_wrong_type(key, value, problem):
    assert validate_openinference(_set(_golden("chat-detailed-usage"), key, value)) == [f"{key}: {problem}"]


def test_an_embedding_vector_holds_floats():
    span = _set(_golden("embeddings-basic"), "embedding.embeddings.0.embedding.vector", "AACAPwAAAEA=")
    assert validate_openinference(span) == [
        "embedding.embeddings.0.embedding.vector: expected an array of floats, got a string ('AACAPwAAAEA=')"]


def test_a_hidden_embedding_vector_is_redacted_not_wrong():
    span = _set(_golden("embeddings-basic"), "embedding.embeddings.0.embedding.vector", "__REDACTED__")
    assert validate_openinference(span) == []


def test_a_tool_json_schema_is_json():
    span = _set(_golden("chat-tools"), "llm.tools.0.tool.json_schema", "{'type': 'function'}")
    assert validate_openinference(span) == [
        "llm.tools.0.tool.json_schema: expected a string holding JSON, got a string that is not JSON (Expecting property"
        " name enclosed in double quotes: line 1 column 2 (char 1))"]


def test_a_key_set_twice():
    span = _golden("chat-basic")
    span.attributes.append(KeyValue(key="llm.system", value=_value("openai")))
    assert validate_openinference(span) == ["llm.system: set 2 times (a span holds each key once)"]


# Key layouts and indices


def test_an_index_that_is_not_one():
    span = _rename(_golden("chat-basic"), "llm.input_messages.0.message.role", "llm.input_messages.first.message.role")
    assert validate_openinference(span) == [
        "llm.input_messages.first.message.role: 'first' after llm.input_messages is not a list index (0, 1, 2, …)"]


def test_an_index_with_a_leading_zero():
    span = _rename(_golden("chat-tools"), "llm.tools.0.tool.json_schema", "llm.tools.00.tool.json_schema")
    assert validate_openinference(span) == [
        "llm.tools.00.tool.json_schema: '00' after llm.tools is not a list index (0, 1, 2, …)"]


def test_indices_not_contiguous_from_zero():
    span = _golden("chat-multiturn")
    for item in span.attributes:
        if item.key.startswith("llm.input_messages.2."):
            item.key = item.key.replace(".2.", ".5.", 1)
    assert validate_openinference(span) == ["llm.input_messages: indices 0, 1, 3, 5 are not contiguous from 0 (missing 2, 4)"]


def test_nested_indices_are_counted_per_list():
    span = _golden("chat-parallel-tools")
    for item in span.attributes:
        item.key = item.key.replace(".tool_calls.1.", ".tool_calls.2.")
    assert validate_openinference(span) == [
        "llm.output_messages.0.message.tool_calls: indices 0, 2 are not contiguous from 0 (missing 1)"]


def test_an_unknown_key_in_a_message():
    span = _rename(_golden("chat-basic"), "llm.input_messages.0.message.content", "llm.input_messages.0.message.text")
    assert validate_openinference(span) == [
        "llm.input_messages.0.message.text: unknown key in an item of llm.input_messages (known: message.content,"
        " message.contents, message.function_call_arguments_json, message.function_call_name, message.name,"
        " message.role, message.tool_call_id, message.tool_calls)"]


def test_an_unknown_key_in_a_content_item():
    span = _rename(_golden("chat-image-to-text"), "llm.input_messages.0.message.contents.1.message_content.image.image.url",
                   "llm.input_messages.0.message.contents.1.message_content.image_url")
    problems = validate_openinference(span)
    assert len(problems) == 1
    assert problems[0].startswith("llm.input_messages.0.message.contents.1.message_content.image_url: unknown key in an"
                                  " item of llm.input_messages.0.message.contents (known: message_content.audio.audio.")


def test_a_vector_split_into_indexed_keys():
    """What a gateway wrote as ``embedding.vector.N`` instead of one array attribute."""
    span = _remove(_golden("embeddings-basic"), "embedding.embeddings.0.embedding.vector")
    span.attributes.extend([KeyValue(key=f"embedding.vector.{index}", value=_value(0.5)) for index in range(2)])
    assert validate_openinference(span) == [
        "embedding.vector.0: unknown key under embedding.vector (embedding.vector is one attribute: an array of floats)",
        "embedding.vector.1: unknown key under embedding.vector (embedding.vector is one attribute: an array of floats)",
    ]


def test_a_list_set_as_one_attribute():
    span = _set(_golden("chat-basic"), "llm.input_messages", '[{"role": "user"}]')
    assert validate_openinference(span) == [
        "llm.input_messages: a list of objects must be flattened with indices (llm.input_messages.0.…), not set as one"
        " attribute"]


def test_an_item_index_without_an_item_key():
    span = _set(_golden("chat-basic"), "llm.output_messages.1", "hello")
    assert validate_openinference(span) == [
        "llm.output_messages.1: item 1 of llm.output_messages must be flattened further (llm.output_messages.1.<item key>)"]


def test_an_unknown_token_count_key():
    span = _set(_golden("chat-basic"), "llm.token_count.input", 3)
    assert validate_openinference(span) == [
        "llm.token_count.input: unknown key in llm.token_count.* (known: llm.token_count.completion,"
        " llm.token_count.prompt, llm.token_count.total, llm.token_count.prompt_details.*,"
        " llm.token_count.completion_details.*)"]


def test_token_count_details_are_open_but_integers():
    span = _set(_golden("chat-basic"), "llm.token_count.prompt_details.cache_write", 0)
    assert validate_openinference(span) == []
    span = _set(span, "llm.token_count.completion_details.accepted_prediction", "0")
    assert validate_openinference(span) == [
        "llm.token_count.completion_details.accepted_prediction: expected an integer, got a string ('0')"]


def test_the_gateways_own_keys_are_left_alone():
    span = _set(_set(_golden("chat-basic"), "gateway.route", "default"), "llm.gateway.retries", 2)
    assert validate_openinference(span) == []


# MIME types


def test_a_json_mime_type_with_a_value_that_is_not_json():
    span = _set(_golden("chat-basic"), "output.value", "Hello there!")
    assert validate_openinference(span) == [
        "output.value: output.mime_type is application/json, but the value is not JSON (Expecting value: line 1 column 1"
        " (char 0))"]


def test_a_plain_text_mime_type_takes_any_text():
    span = _set(_set(_golden("chat-basic"), "output.value", "Hello there!"), "output.mime_type", "text/plain")
    assert validate_openinference(span) == []


def test_a_mime_type_the_conventions_do_not_define():
    span = _set(_golden("chat-basic"), "input.mime_type", "application/x-ndjson")
    assert validate_openinference(span) == ["input.mime_type: 'application/x-ndjson' is not text/plain or application/json"]


# Token counts


def test_token_counts_that_do_not_add_up():
    span = _set(_golden("chat-basic"), "llm.token_count.total", 999)
    problems = validate_openinference(span)
    assert len(problems) == 1
    assert problems[0].startswith("llm.token_count.total: 999, but llm.token_count.prompt + llm.token_count.completion = ")


def test_a_negative_token_count():
    span = _golden("embeddings-basic")  # prompt and total only: no sum to check
    span = _set(_set(span, "llm.token_count.prompt", -1), "llm.token_count.total", -1)
    assert sorted(validate_openinference(span)) == ["llm.token_count.prompt: -1 is negative (a count of tokens)",
                                                    "llm.token_count.total: -1 is negative (a count of tokens)"]


# Errors


def test_an_error_without_an_exception_event():
    span = _golden("chat-bad-request")
    del span.events[:]
    assert validate_openinference(span) == [
        "events: ERROR status without an 'exception' event (exception.type, exception.message)"]


def test_an_error_without_a_status_message():
    span = _golden("chat-bad-request")
    span.status.message = ""
    assert validate_openinference(span) == [
        ESCAPED_AS_STRING, "status.message: empty on an ERROR status (the description says what failed)"]


def test_an_exception_event_without_type_or_message():
    span = _golden("chat-bad-request")
    kept = [item for item in span.events[0].attributes if item.key not in ("exception.type", "exception.escaped")]
    del span.events[0].attributes[:]
    span.events[0].attributes.extend(kept)
    assert validate_openinference(span) == ["exception.type (exception event): missing"]


def test_an_ok_span_needs_no_exception_event():
    span = _golden("chat-basic")
    assert span.status.code == Status.STATUS_CODE_OK and not span.events
    assert validate_openinference(span) == []


# Inputs and the assertion


def _otlp_export(span: Span) -> dict[str, Any]:
    """The span as an OTLP/HTTP JSON exporter sends it: an export request, hex ids."""
    span.trace_id, span.span_id = bytes(range(16)), bytes(range(8))
    body = MessageToDict(span)
    body["traceId"], body["spanId"] = span.trace_id.hex(), span.span_id.hex()
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "gw"}, "spans": [body]}]}]}


def test_a_span_given_as_otlp_json_dict():
    export = _otlp_export(_set(_golden("chat-basic"), "llm.token_count.total", "36"))
    assert validate_openinference(export) == ["llm.token_count.total: expected an integer, got a string ('36')"]


def test_a_span_given_as_a_file(tmp_path: Path):
    path = tmp_path / "span.json"
    path.write_text(json.dumps(_otlp_export(_remove(_golden("chat-basic"), "llm.system"))), encoding="utf-8")
    assert validate_openinference(path) == ["llm.system: missing (required on LLM spans)"]
    assert validate_openinference(str(SPANS / "chat-basic.json")) == []


def test_assert_valid_openinference_raises_one_typed_error_listing_every_problem():
    span = _set(_remove(_golden("chat-basic"), "llm.system"), "output.value", "not json")
    with pytest.raises(InvalidOpenInferenceSpanError) as caught:
        assert_valid_openinference(span)
    assert isinstance(caught.value, (TestOpenInferenceError, AssertionError))
    assert caught.value.problems == validate_openinference(span)
    assert str(caught.value).splitlines()[:3] == [
        "span 'ChatCompletion' is not valid OpenInference (2 problems):",
        "  llm.system: missing (required on LLM spans)",
        "  output.value: output.mime_type is application/json, but the value is not JSON (Expecting value: line 1 column"
        " 1 (char 0))",
    ]
    assert "semantic conventions" in str(caught.value)


def test_assert_valid_openinference_passes_a_valid_span():
    assert_valid_openinference(SPANS / "embeddings-basic.json")

"""Comparing a gateway's span with the reference golden (issue 14 item 7).

The gateway variants are built from the goldens the way real gateways change them: their own span names and
kinds, their own error wording, qualified error types, an exception event the reference has not.
"""

from __future__ import annotations

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference import SpanMismatchError, assert_span_equal, compare_spans, span_differences
from testopeninference.compare import GATEWAY_HINT
from testopeninference.recorder.span_file import read_span
from tests.helpers import SPANS

TEMPERATURE = "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3.5 instead."


def golden(name: str) -> Span:
    return read_span(SPANS / name)


def variant(span: Span, **changes: object) -> Span:
    """A copy of ``span`` with span fields, string attributes or exception-event attributes replaced."""
    copy = Span()
    copy.CopyFrom(span)
    for key, value in changes.items():
        if key in ("name", "kind"):
            setattr(copy, key, value)
        elif key == "status_message":
            copy.status.message = str(value)
        else:
            key = key.replace("__", ".")
            owners = [copy, *copy.events]
            kv = next(a for owner in owners for a in owner.attributes if a.key == key)
            kv.value.string_value = str(value)
    return copy


def gateway_error_span(status_message: str, exception_message: str) -> Span:
    """chat-bad-request as a gateway (LiteLLM-like) exports it: its own name, kind and wording."""
    return variant(golden("chat-bad-request.json"), name="litellm_request", kind=Span.SPAN_KIND_SERVER,
                   status_message=status_message, exception__type="litellm.BadRequestError",
                   exception__message=exception_message)


# --- name and kind ----------------------------------------------------------------------------------


def test_a_gateway_comparison_reports_name_and_kind_as_notes_not_differences():
    actual = variant(golden("chat-basic.json"), name="litellm_request", kind=Span.SPAN_KIND_SERVER)
    found = compare_spans(golden("chat-basic.json"), actual, gateway=True)
    assert found.differences == []
    assert found.notes == ["name: expected 'ChatCompletion', got 'litellm_request' (not compared)",
                           "kind: expected 'SPAN_KIND_INTERNAL', got 'SPAN_KIND_SERVER' (not compared)"]
    assert span_differences(golden("chat-basic.json"), actual, gateway=True) == []
    assert_span_equal(golden("chat-basic.json"), actual, gateway=True)


def test_a_recording_against_its_golden_still_compares_name_and_kind():
    actual = variant(golden("chat-basic.json"), name="litellm_request", kind=Span.SPAN_KIND_SERVER)
    assert span_differences(golden("chat-basic.json"), actual) == [
        "name: expected 'ChatCompletion', got 'litellm_request'",
        "kind: expected 'SPAN_KIND_INTERNAL', got 'SPAN_KIND_SERVER'"]


@pytest.mark.parametrize(("compare_name", "compare_kind", "lines"), [
    (True, False, ["name: expected 'ChatCompletion', got 'litellm_request'"]),
    (False, True, ["kind: expected 'SPAN_KIND_INTERNAL', got 'SPAN_KIND_SERVER'"]),
])
def test_name_and_kind_are_compared_where_asked(compare_name, compare_kind, lines):
    actual = variant(golden("chat-basic.json"), name="litellm_request", kind=Span.SPAN_KIND_SERVER)
    assert span_differences(golden("chat-basic.json"), actual, gateway=True, compare_name=compare_name,
                            compare_kind=compare_kind) == lines
    assert span_differences(golden("chat-basic.json"), actual, compare_name=compare_name,
                            compare_kind=compare_kind) == lines


def test_a_gateway_failure_lists_notes_and_says_the_gateway_differs_from_the_reference():
    actual = variant(golden("chat-basic.json"), name="litellm_request", llm__model_name="gpt-4.1-mini")
    with pytest.raises(SpanMismatchError) as raised:
        assert_span_equal(golden("chat-basic.json"), actual, golden=SPANS / "chat-basic.json", gateway=True)
    lines = str(raised.value).splitlines()
    assert lines[1:] == [
        "  attribute 'llm.model_name': expected 'gpt-4.1-nano-2025-04-14', got 'gpt-4.1-mini'",
        "  note: name: expected 'ChatCompletion', got 'litellm_request' (not compared)",
        GATEWAY_HINT,
    ]
    assert "re-record" not in str(raised.value)


def test_a_gateway_failure_without_a_golden_file_still_gets_the_gateway_advice():
    with pytest.raises(SpanMismatchError) as raised:
        assert_span_equal(golden("chat-basic.json"), variant(golden("chat-basic.json"), llm__system="other"),
                          gateway=True)
    assert str(raised.value).splitlines()[-1] == GATEWAY_HINT


def test_the_re_record_advice_stays_for_a_recording_against_its_own_golden(tmp_path):
    own = tmp_path / "spans" / "chat-basic.json"
    with pytest.raises(SpanMismatchError) as raised:
        assert_span_equal(golden("chat-basic.json"), variant(golden("chat-basic.json"), llm__system="other"),
                          golden=own)
    assert str(raised.value).splitlines()[-1].startswith("If the golden is out of date, re-record it")


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status_message", "exception_message"), [
    ("upstream returned 400: invalid_request_error", "upstream returned 400: invalid_request_error"),
    ("litellm.BadRequestError: OpenAIException - " + TEMPERATURE, "litellm.BadRequestError: " + TEMPERATURE),
    ("BadRequestError: status_code=400, " + TEMPERATURE, "HTTP 400 Bad Request"),
])
def test_a_gateway_error_worded_its_own_way_matches_by_http_status_and_error_type(status_message,
                                                                                  exception_message):
    actual = gateway_error_span(status_message, exception_message)
    assert span_differences(golden("chat-bad-request.json"), actual, gateway=True) == []


def test_a_gateway_error_with_another_status_differs_and_says_which():
    actual = gateway_error_span("upstream returned 404: model_not_found", "NotFoundError: no such model")
    assert span_differences(golden("chat-bad-request.json"), actual, gateway=True) == [
        "status.message: expected 'Error code: 400', got 'Error code: 404'",
        "event 0 'exception' attribute 'exception.message': expected 'Error code: 400', got 'Error code: 404'",
    ]


@pytest.mark.parametrize("message", ["upstream 127.0.0.1:443 refused", "took 4.04 s", "id 4001 failed"])
def test_numbers_that_are_no_http_status_are_compared_as_words(message):
    assert span_differences(variant(golden("chat-bad-request.json"), status_message="Error code: 400"),
                            variant(golden("chat-bad-request.json"), status_message=message)) == [
        f"status.message: expected 'Error code: 400', got {message!r}"]


@pytest.mark.parametrize(("error_type", "same"), [
    ("openai.BadRequestError", True), ("litellm.BadRequestError", True), ("BadRequestError", True),
    ("NotFoundError", False), ("openai.NotFoundError", False),
])
def test_one_prefix_rule_for_error_type_and_exception_type(error_type, same):
    otel = golden("otel-genai/chat-bad-request.json")
    assert (span_differences(otel, variant(otel, error__type=error_type)) == []) is same
    reference = golden("chat-bad-request.json")
    assert (span_differences(reference, variant(reference, exception__type=error_type)) == []) is same


# --- events -----------------------------------------------------------------------------------------


def test_an_extra_exception_event_is_named_with_its_type_and_message():
    reference = golden("chat-bad-request.json")
    without_events = Span()
    without_events.CopyFrom(reference)
    del without_events.events[:]
    [line] = [d for d in span_differences(without_events, reference) if d.startswith("events")]
    assert line == ("events: expected none, got 1: exception BadRequestError: "
                    "\"Error code: 400 - Invalid 'temperature': decimal above maximum value. Expec...\"")
    [line] = [d for d in span_differences(reference, without_events) if d.startswith("events")]
    assert line.startswith("events: expected 1: exception BadRequestError: \"Error code: 400 - ")
    assert line.endswith('...", got none')


def test_other_events_are_named_by_name():
    one = Span(events=[Span.Event(name="gen_ai.choice")])
    two = Span(events=[Span.Event(name="gen_ai.choice"), Span.Event(name="")])
    assert span_differences(one, two)[0] == "events: expected 1: gen_ai.choice, got 2: gen_ai.choice; (no name)"


# --- whole values -----------------------------------------------------------------------------------


def test_full_shows_values_whole():
    reference = golden("chat-basic.json")
    output = next(a.value.string_value for a in reference.attributes if a.key == "output.value")
    actual = variant(reference, output__value="not JSON")
    [cut] = span_differences(reference, actual)
    assert cut.endswith("..., got 'not JSON'") and len(cut) < 200
    [whole] = span_differences(reference, actual, full=True)
    assert whole == f"attribute 'output.value': expected {output!r}, got 'not JSON'"
    without_events = Span()
    without_events.CopyFrom(golden("chat-bad-request.json"))
    del without_events.events[:]
    lines = span_differences(without_events, golden("chat-bad-request.json"), full=True)
    assert f'"Error code: 400 - {TEMPERATURE}"' in lines[-1]
    with pytest.raises(SpanMismatchError) as raised:
        assert_span_equal(reference, actual, full=True)
    assert repr(output) in str(raised.value)

"""Tests for the lenient span comparison in testopeninference.compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf.json_format import Parse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from testopeninference.compare import assert_span_equal, normalise_attributes, span_differences
from testopeninference.errors import SpanMismatchError

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
ERROR = Status.STATUS_CODE_ERROR


def any_value(value: object) -> AnyValue:
    """An AnyValue of the kind matching a Python value."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=attrs(value)))
    raise TypeError(value)


def attrs(attributes: dict[str, object] | None) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in (attributes or {}).items()]


def event(
    name: str = "exception", attributes: dict[str, object] | None = None, **fields
) -> Span.Event:
    return Span.Event(name=name, attributes=attrs(attributes), **fields)


def link(attributes: dict[str, object] | None = None, **fields) -> Span.Link:
    return Span.Link(attributes=attrs(attributes), **fields)


def span(
    attributes: dict[str, object] | None = None,
    *,
    name: str = "ChatCompletion",
    kind: int = Span.SPAN_KIND_INTERNAL,
    code: int = Status.STATUS_CODE_OK,
    message: str = "",
    events: list[Span.Event] | None = None,
    links: list[Span.Link] | None = None,
    **fields,
) -> Span:
    return Span(
        name=name,
        kind=kind,
        status=Status(code=code, message=message),
        attributes=attrs(attributes),
        events=events or [],
        links=links or [],
        **fields,
    )


# --- span fields ------------------------------------------------------------------


def test_identical_spans_match() -> None:
    s = span({"llm.system": "openai", "llm.token_count.total": 10}, events=[event()])
    assert span_differences(s, s) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"trace_id": b"\x01" * 16},
        {"span_id": b"\x02" * 8},
        {"parent_span_id": b"\x03" * 8},
        {"trace_state": "vendor=1"},
        {"start_time_unix_nano": 1},
        {"end_time_unix_nano": 2},
        {"flags": 256},
        {"dropped_attributes_count": 3},
        {"dropped_events_count": 4},
        {"dropped_links_count": 5},
    ],
    ids=lambda fields: next(iter(fields)),
)
def test_ignored_span_fields(fields: dict[str, object]) -> None:
    assert span_differences(span(flags=257), span(**{"flags": 257, **fields})) == []


def test_event_time_and_link_ids_are_ignored() -> None:
    expected = span(events=[event(time_unix_nano=1)], links=[link(trace_id=b"\x01" * 16)])
    actual = span(
        events=[event(time_unix_nano=2, dropped_attributes_count=1)],
        links=[link(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, trace_state="x=1")],
    )
    assert span_differences(expected, actual) == []


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"name": "Completion"}, "name: expected 'ChatCompletion', got 'Completion'"),
        (
            {"kind": Span.SPAN_KIND_CLIENT},
            "kind: expected 'SPAN_KIND_INTERNAL', got 'SPAN_KIND_CLIENT'",
        ),
        ({"kind": 99}, "kind: expected 'SPAN_KIND_INTERNAL', got '99'"),
        ({"code": ERROR}, "status.code: expected 'STATUS_CODE_OK', got 'STATUS_CODE_ERROR'"),
        ({"message": "boom"}, "status.message: expected '', got 'boom'"),
    ],
)
def test_span_field_differences(changes: dict[str, object], line: str) -> None:
    assert span_differences(span(), span(**changes)) == [line]


# --- attributes ---------------------------------------------------------------------


def test_attribute_order_does_not_matter() -> None:
    assert span_differences(span({"a": "x", "b": 2}), span({"b": 2, "a": "x"})) == []


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ("x", "x"),
        (True, True),
        (7, 7),
        (0.5, 0.5),
        (b"\x01", b"\x01"),
        (["a", "b"], ["a", "b"]),
        ({"k": 1, "j": "v"}, {"j": "v", "k": 1}),
    ],
)
def test_equal_values_of_each_kind(expected: object, actual: object) -> None:
    assert span_differences(span({"k": expected}), span({"k": actual})) == []


@pytest.mark.parametrize(
    ("expected", "actual", "what"),
    [
        (385, 384, "expected 385, got 384"),
        (7, 7.0, "expected 7, got 7.0"),
        (1, True, "expected 1, got True"),
        ("1", 1, "expected '1', got 1"),
        (True, "true", "expected True, got 'true'"),
        (["a", "b"], ["a", "c"], "at [1]: expected 'b', got 'c'"),
        (["a", "b"], ["a"], "at [1]: missing (expected 'b')"),
        ({"k": 1}, {"k": 2}, "at k: expected 1, got 2"),
        ({"k": 1}, {"k": 1, "j": 2}, "at j: unexpected (got 2)"),
    ],
)
def test_different_values(expected: object, actual: object, what: str) -> None:
    differences = span_differences(span({"k": expected}), span({"k": actual}))
    assert differences == [f"attribute 'k': {what}"]


def test_missing_and_unexpected_attributes() -> None:
    long = '{"id": "' + "x" * 200 + '"}'
    differences = span_differences(
        span({"output.value": long}), span({"llm.finish_reason": "stop"})
    )
    assert differences == [
        "attribute 'output.value': missing (expected '{\"id\": \"" + "x" * 68 + "...)",
        "attribute 'llm.finish_reason': unexpected (got 'stop')",
    ]


@pytest.mark.parametrize("zero", ["", 0, 0.0, False, []], ids=repr)
def test_zero_valued_attribute_counts_as_absent(zero: object) -> None:
    assert span_differences(span({"k": zero}), span()) == []
    assert span_differences(span(), span({"k": zero})) == []
    assert span_differences(span({"k": zero}), span({"k": zero})) == []


# --- JSON attributes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ({"a": 1, "b": None, "c": []}, {"a": 1}),
        ({"a": "", "b": 0, "c": 0.0, "d": False, "e": {}, "f": 1}, {"f": 1}),
        ({"usage": {"seconds": 7.0}}, {"usage": {"seconds": 7}}),
        ({"a": {"b": {"c": None}}, "x": 1}, {"x": 1}),  # emptied objects drop too
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ([{"a": 1, "b": None}, {"c": ""}], [{"a": 1}, {}]),  # positions kept, elements cleaned
    ],
)
def test_equal_json(expected: object, actual: object) -> None:
    want, got = span({"v": json.dumps(expected)}), span({"v": json.dumps(actual)})
    assert span_differences(want, got) == []


@pytest.mark.parametrize(
    ("expected", "actual", "what"),
    [
        (
            {"choices": [{"message": {"content": "Hi"}}]},
            {"choices": [{"message": {"content": "Hello"}}]},
            "JSON differs at choices[0].message.content: expected 'Hi', got 'Hello'",
        ),
        ([{"a": 0}, {"b": 1}], [{"b": 1}], "JSON differs at [0].b: unexpected (got 1); [1]: missing (expected {'b': 1})"),
        ({"a": True}, {"a": 1}, "JSON differs at a: expected True, got 1"),
        ({"a": 1}, {"a": 1, "b": "x"}, "JSON differs at b: unexpected (got 'x')"),
        ({"a": 1, "b": "x"}, {"a": 1}, "JSON differs at b: missing (expected 'x')"),
        ({"a": [1, 2]}, {"a": [1]}, "JSON differs at a[1]: missing (expected 2)"),
        ({"a": 1}, [1], "JSON differs at (root): expected {'a': 1}, got [1]"),
    ],
)
def test_different_json(expected: object, actual: object, what: str) -> None:
    want, got = span({"v": json.dumps(expected)}), span({"v": json.dumps(actual)})
    assert span_differences(want, got) == [f"attribute 'v': {what}"]


def test_json_difference_values_are_truncated() -> None:
    want = span({"v": json.dumps({"text": "a" * 300})})
    got = span({"v": json.dumps({"text": "b" * 300})})
    [line] = span_differences(want, got)
    assert line.startswith("attribute 'v': JSON differs at text: expected 'aaa")
    assert len(line) < 220


@pytest.mark.parametrize("text", ["{not json", "[1, 2", "plain", "42"])
def test_non_json_strings_compare_as_strings(text: str) -> None:
    assert span_differences(span({"v": text}), span({"v": text})) == []
    assert span_differences(span({"v": text}), span({"v": text + " "})) != []


def test_json_string_differs_from_plain_string() -> None:
    [line] = span_differences(span({"v": '{"a": 1}'}), span({"v": "{'a': 1}"}))
    assert line == """attribute 'v': expected '{"a": 1}', got "{'a': 1}\""""


# --- errors -------------------------------------------------------------------------


def exception(**attributes: object) -> Span.Event:
    return event("exception", attributes)


def test_python_only_exception_attributes_are_ignored() -> None:
    expected = span(events=[exception(**{"exception.type": "BadRequestError"})])
    actual = span(
        events=[
            exception(
                **{
                    "exception.type": "openai.BadRequestError",
                    "exception.stacktrace": "Traceback (most recent call last): ...",
                    "exception.escaped": "False",
                }
            )
        ]
    )
    assert span_differences(expected, actual) == []
    assert span_differences(actual, expected) == []


def test_exception_type_differences_are_reported() -> None:
    expected = span(events=[exception(**{"exception.type": "openai.BadRequestError"})])
    actual = span(events=[exception(**{"exception.type": "openai.NotFoundError"})])
    assert span_differences(expected, actual) == [
        "event 0 'exception' attribute 'exception.type': "
        "expected 'BadRequestError', got 'NotFoundError'"
    ]


BODY = "{'error': {'code': 'unsupported_parameter'}}"


@pytest.mark.parametrize(
    ("expected", "actual", "same"),
    [
        (f"BadRequestError: Error code: 400 - {BODY}", "Error code: 400 - {'other': 1}", True),
        ("Error code: 400", f"openai.BadRequestError: Error code: 400 - {BODY}", True),
        ("Error code: 400 - x", "Error code: 404 - x", False),
        ("Error code: 400 - x", "BadRequestError: bad request", True),  # the SDK's class for a 400
        ("BadRequestError: bad request", "Error code: 400", True),
        ("BadRequestError: bad request", "NotFoundError: no such model", False),
        ("Error code: 400 - x", "connection refused", False),
        ("connection refused", "connection refused", True),
        ("connection refused", "connection reset", False),
    ],
)
def test_error_messages_compare_on_error_code(expected: str, actual: str, same: bool) -> None:
    status = span(code=ERROR, message=expected), span(code=ERROR, message=actual)
    assert (span_differences(*status) == []) is same
    events = (
        span(events=[exception(**{"exception.message": expected})]),
        span(events=[exception(**{"exception.message": actual})]),
    )
    assert (span_differences(*events) == []) is same


def test_error_message_difference_lines() -> None:
    expected = span(
        code=ERROR,
        message="Error code: 400 - x",
        events=[exception(**{"exception.message": "Error code: 400 - x"})],
    )
    actual = span(
        code=ERROR,
        message="Error code: 404 - y",
        events=[exception(**{"exception.message": "Error code: 404 - y"})],
    )
    assert span_differences(expected, actual) == [
        "status.message: expected 'Error code: 400', got 'Error code: 404'",
        "event 0 'exception' attribute 'exception.message': "
        "expected 'Error code: 400', got 'Error code: 404'",
    ]


@pytest.mark.parametrize(("code", "ignored"), [(ERROR, True), (Status.STATUS_CODE_OK, False)])
def test_model_name_is_ignored_only_on_error_spans(code: int, ignored: bool) -> None:
    expected = span({"llm.model_name": "gpt-5-nano"}, code=code)
    actual = span({"llm.model_name": "gpt-5-nano-2025-08-07"}, code=code)
    assert (span_differences(expected, actual) == []) is ignored
    assert (span_differences(expected, span(code=code)) == []) is ignored


# --- events and links ---------------------------------------------------------------


def test_event_count_and_names() -> None:
    assert span_differences(span(events=[exception()]), span()) == ["events: expected 1: exception, got none"]
    assert span_differences(span(events=[event("a")]), span(events=[event("b")])) == [
        "event 0 name: expected 'a', got 'b'"
    ]


def test_events_compare_in_order() -> None:
    first, second = event("a", {"n": 1}), event("b", {"n": 2})
    assert span_differences(span(events=[first, second]), span(events=[second, first])) == [
        "event 0 name: expected 'a', got 'b'",
        "event 0 'a' attribute 'n': expected 1, got 2",
        "event 1 name: expected 'b', got 'a'",
        "event 1 'b' attribute 'n': expected 2, got 1",
    ]


def test_event_attributes_follow_attribute_rules() -> None:
    expected = span(events=[event("e", {"a": "x", "zero": 0, "j": '{"k": 1, "n": null}'})])
    actual = span(events=[event("e", {"j": '{"k": 1.0}', "a": "x", "empty": ""})])
    assert span_differences(expected, actual) == []


def test_link_count_and_attributes() -> None:
    assert span_differences(span(links=[link()]), span()) == ["links: expected 1, got 0"]
    assert span_differences(span(links=[link({"a": 1})]), span(links=[link({"a": 2})])) == [
        "link 0 attribute 'a': expected 1, got 2"
    ]


# --- ignore_keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    "ignore_keys",
    [
        ["llm.finish_reason", "output.images.0.image.url"],
        ["llm.finish_reason", "output.images.*.image.url"],
        ["llm.finish_*", "output.images.*"],
    ],
)
def test_ignore_keys_exact_and_patterns(ignore_keys: list[str]) -> None:
    expected = span({"llm.system": "openai"}, events=[event("e")])
    actual = span(
        {"llm.system": "openai", "llm.finish_reason": "stop", "output.images.0.image.url": "u"},
        events=[event("e", {"llm.finish_reason": "stop"})],
    )
    assert span_differences(expected, actual, ignore_keys=ignore_keys) == []
    assert span_differences(actual, expected, ignore_keys=ignore_keys) == []


def test_ignore_key_patterns_do_not_overmatch() -> None:
    expected = span({"output.images.0.image.url": "a", "output.value": "x"})
    actual = span({"output.images.0.image.url": "b", "output.value": "y"})
    assert span_differences(expected, actual, ignore_keys=["output.images.*.image.url"]) == [
        "attribute 'output.value': expected 'x', got 'y'"
    ]


def test_ignore_keys_accepts_a_generator() -> None:
    expected, actual = span({"a": 1, "b": 1}), span({"a": 2, "b": 2})
    assert span_differences(expected, actual, ignore_keys=(k for k in "ab")) == []


def test_normalise_attributes() -> None:
    attributes = attrs(
        {
            "zero": 0,
            "exception.stacktrace": "...",
            "exception.type": "openai.APIError",
            "llm.model_name": "m",
            "skip.me": "x",
            "kept": [1, 2],
        }
    )
    assert normalise_attributes(attributes, error=True, ignore_keys=["skip.*"]) == {
        "exception.type": "APIError",
        "kept": [1, 2],
    }


# --- assert_span_equal --------------------------------------------------------------


def test_assert_span_equal_passes_on_match() -> None:
    assert_span_equal(span({"a": 1}), span({"a": 1}, flags=256), golden="spans/x.json")


def test_assert_span_equal_names_golden_and_each_difference() -> None:
    with pytest.raises(SpanMismatchError) as raised:
        assert_span_equal(
            span({"a": 1}), span({"a": 2}, name="Other"), golden="spans/chat-basic.json"
        )
    assert isinstance(raised.value, AssertionError)
    assert str(raised.value).splitlines() == [
        "span differs from golden spans/chat-basic.json",
        "  name: expected 'ChatCompletion', got 'Other'",
        "  attribute 'a': expected 1, got 2",
        "If the golden is out of date, re-record it: testopeninference record --force chat-basic"
        " (or delete spans/chat-basic.json and run pytest --record-spans).",
    ]


def test_assert_span_equal_without_golden() -> None:
    with pytest.raises(AssertionError) as raised:
        assert_span_equal(span({"a": 1}), span(), ignore_keys=["b"])
    assert str(raised.value).splitlines() == [
        "span differs from the expected span",
        "  attribute 'a': missing (expected 1)",
    ]


# --- reference spans ----------------------------------------------------------------


def load_reference(name: str) -> Span:
    path = REFERENCE / "spans" / name
    if not path.is_file():
        pytest.skip(f"reference corpus not available at {path.parent}")
    return Parse(path.read_text(encoding="utf-8"), Span())


@pytest.mark.parametrize("name", ["chat-basic.json", "chat-bad-request.json"])
def test_reference_span_matches_itself(name: str) -> None:
    golden = load_reference(name)
    assert span_differences(golden, load_reference(name)) == []


def test_reference_span_with_one_changed_token_count() -> None:
    golden = load_reference("chat-basic.json")
    changed = Span()
    changed.CopyFrom(golden)
    for attribute in changed.attributes:
        if attribute.key == "llm.token_count.total":
            attribute.value.int_value -= 1
    assert span_differences(golden, changed) == [
        "attribute 'llm.token_count.total': expected 385, got 384"
    ]


def test_reference_error_span_matches_a_differently_worded_error() -> None:
    golden = load_reference("chat-bad-request.json")
    actual = Span()
    actual.CopyFrom(golden)
    actual.flags = 256
    actual.status.message = "Error code: 400 - {'error': {'message': 'reworded'}}"
    [exc] = actual.events
    kept = [kv for kv in exc.attributes if kv.key in ("exception.type", "exception.message")]
    del exc.attributes[:]
    exc.attributes.extend(kept)
    for attribute in exc.attributes:
        if attribute.key == "exception.type":
            attribute.value.string_value = "BadRequestError"
        else:
            attribute.value.string_value = "Error code: 400 - {}"
    assert span_differences(golden, actual) == []


# --- log records ---------------------------------------------------------------------------------

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData  # noqa: E402

from testopeninference.compare import assert_log_records_equal, log_record_differences  # noqa: E402


def log_record(event: str, body: dict | str, **attributes: object) -> LogRecord:
    record = LogRecord(event_name=event, time_unix_nano=123, trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    if isinstance(body, str):
        record.body.string_value = body
    else:
        for key, value in body.items():
            record.body.kvlist_value.values.add(key=key).value.string_value = value
    for key, value in attributes.items():
        if isinstance(value, int):
            record.attributes.add(key=key).value.int_value = value
        else:
            record.attributes.add(key=key).value.string_value = str(value)
    return record


def test_log_records_match_ignoring_times_and_ids():
    want = [log_record("gen_ai.user.message", {"content": "Hi"}, **{"gen_ai.provider.name": "openai"})]
    got = [log_record("gen_ai.user.message", {"content": "Hi"}, **{"gen_ai.provider.name": "openai"})]
    got[0].time_unix_nano, got[0].trace_id = 999, b"\x09" * 16
    assert log_record_differences(want, got) == []


def test_log_record_differences_name_event_body_and_attributes():
    want = [log_record("gen_ai.user.message", {"content": "Hi"}, **{"a": 1}), log_record("gen_ai.choice", {})]
    got = [log_record("gen_ai.system.message", {"content": "Hello"}, **{"a": 2})]
    assert log_record_differences(want, got) == [
        "log records: expected 2, got 1",
        "log record 0 'gen_ai.user.message' event name: expected 'gen_ai.user.message', got 'gen_ai.system.message'",
        "log record 0 'gen_ai.user.message' body: JSON differs at content: expected 'Hi', got 'Hello'",
        "log record 0 'gen_ai.user.message' attribute 'a': expected 1, got 2",
    ]


def test_json_string_bodies_compare_as_data_and_logs_data_is_accepted():
    want = LogsData()
    want.resource_logs.add().scope_logs.add().log_records.append(log_record("e", '{"a": 1, "b": null}'))
    assert log_record_differences(want, [log_record("e", '{"a": 1.0}')]) == []


def test_assert_log_records_equal_names_the_golden():
    with pytest.raises(AssertionError, match="log records differ from golden g.logs.json\n  log records: expected 1"):
        assert_log_records_equal([log_record("e", {})], [], golden="g.logs.json")


def test_a_cassette_name_as_golden_names_its_file_and_the_advice_fits_where_it_comes_from(monkeypatch) -> None:
    from testopeninference.recorder import resources
    from tests.helpers import SPANS

    with pytest.raises(AssertionError) as raised:
        assert_span_equal(span({"a": 1}), span({"a": 2}), golden="chat-basic")
    lines = str(raised.value).splitlines()
    assert lines[0] == f"span differs from golden {SPANS / 'chat-basic.json'}"
    assert lines[-1].startswith("If the golden is out of date, re-record it: testopeninference record --force chat-basic")
    monkeypatch.setattr(resources, "INSTALLED", True)  # as from a wheel: the golden ships with the package
    monkeypatch.setattr(resources, "ROOT", SPANS.parent)
    with pytest.raises(AssertionError) as raised:
        assert_span_equal(span({"a": 1}), span({"a": 2}), golden="chat-basic")
    assert str(raised.value).splitlines()[-1].startswith("The golden ships with testopeninference")

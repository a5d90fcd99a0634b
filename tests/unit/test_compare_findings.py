"""``compare_spans(...).findings``: the differences in structured form, one per line, lines unchanged."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from testopeninference.compare import Finding, compare_spans, span_differences


def span(name: str = "ChatCompletion", status: int = Status.STATUS_CODE_OK, **attributes: object) -> Span:
    result = Span(name=name, status=Status(code=status))
    for key, value in attributes.items():
        any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=str(value))
        result.attributes.append(KeyValue(key=key.replace("_", "."), value=any_value))
    return result


def test_each_difference_has_one_finding_with_key_kind_and_values():
    expected = span(llm_system="openai", llm_model="gpt-4o", input_value='{"a": 1}')
    actual = span(name="gw", status=Status.STATUS_CODE_ERROR, llm_model="gpt-4o-mini", input_value='{"a": 2}',
                  gateway_route="r1")
    comparison = compare_spans(expected, actual, gateway=True)
    assert [found.line for found in comparison.findings] == comparison.differences
    assert comparison.differences == span_differences(expected, actual, gateway=True)
    by_key = {found.key: found for found in comparison.findings}
    assert by_key["llm.system"] == Finding("llm.system", "missing", "openai", None,
                                           "attribute 'llm.system': missing (expected 'openai')")
    assert (by_key["llm.model"].kind, by_key["llm.model"].expected, by_key["llm.model"].actual) == (
        "different", "gpt-4o", "gpt-4o-mini")
    assert (by_key["input.value"].kind, by_key["input.value"].expected) == ("different", '{"a": 1}')
    assert (by_key["gateway.route"].kind, by_key["gateway.route"].actual) == ("unexpected", "r1")
    assert by_key["status.code"].kind == "different"
    assert "name" not in by_key  # a gateway's span name is a note, not a difference


def test_a_matching_span_has_no_findings():
    assert compare_spans(span(llm_system="openai"), span(llm_system="openai")).findings == []

"""The one OTLP/JSON decoder: the same messages as protobuf's ``json_format.ParseDict`` on every JSON edge
case, with OTLP/JSON's hex ids, and errors that name the field."""

import base64
import json
import math

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.errors import InvalidOTLPError
from testopeninference.recorder.otlp_json import HEX, HEX_OR_BASE64, message_from_json

TRACE_HEX, SPAN_HEX = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
EDGE_CASES = {
    "name": "ChatCompletion",
    "kind": "SPAN_KIND_CLIENT",
    "start_time_unix_nano": "18446744073709551615",  # proto field name, uint64 maximum as a string
    "endTimeUnixNano": 1700000000000000001,
    "droppedAttributesCount": 3.0,
    "traceState": None,
    "status": {"code": 2, "message": "boom"},
    "attributes": [
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "i", "value": {"intValue": "-9223372036854775808"}},
        {"key": "d", "value": {"doubleValue": "NaN"}},
        {"key": "inf", "value": {"doubleValue": "-Infinity"}},
        {"key": "f", "value": {"doubleValue": "1.5"}},
        {"key": "z", "value": {"doubleValue": 0}},
        {"key": "b", "value": {"boolValue": False}},
        {"key": "raw", "value": {"bytesValue": base64.urlsafe_b64encode(b"\xfb\xff").decode().rstrip("=")}},
        {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}, {"kvlistValue": {"values": [
            {"key": "k", "value": {"stringValue": "v"}}]}}]}}},
        {"key": "empty", "value": {}},
    ],
    "events": [{"name": "exception", "timeUnixNano": "5", "attributes": []}],
    "someFutureField": {"nested": [1, 2]},
}


def test_edge_cases_read_as_protobuf_reads_them():
    expected = json_format.ParseDict(EDGE_CASES, Span(), ignore_unknown_fields=True)
    span = message_from_json(json.loads(json.dumps(EDGE_CASES)), Span)
    assert math.isnan(span.attributes[2].value.double_value)
    span.attributes[2].value.double_value = expected.attributes[2].value.double_value = 0  # NaN != NaN
    assert span == expected
    assert span.start_time_unix_nano == 2**64 - 1 and span.attributes[7].value.bytes_value == b"\xfb\xff"


def test_hex_ids_in_either_case_everywhere_they_are():
    link = {"traceId": TRACE_HEX.upper(), "spanId": SPAN_HEX}
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": TRACE_HEX, "spanId": SPAN_HEX.upper(), "parentSpanId": "", "links": [link]}]}]}]}
    (span,) = message_from_json(document, ExportTraceServiceRequest).resource_spans[0].scope_spans[0].spans
    assert (span.trace_id, span.span_id, span.parent_span_id) == (bytes.fromhex(TRACE_HEX), bytes.fromhex(SPAN_HEX), b"")
    assert span.links[0].trace_id == bytes.fromhex(TRACE_HEX)
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": TRACE_HEX, "severityNumber": "SEVERITY_NUMBER_WARN"}]}]}]}
    record = message_from_json(logs, ExportLogsServiceRequest).resource_logs[0].scope_logs[0].log_records[0]
    assert (record.trace_id, record.severity_number) == (bytes.fromhex(TRACE_HEX), 13)


def test_goldens_base64_ids_are_read_as_base64_and_hex_as_hex():
    original = Span(trace_id=bytes(range(16)), span_id=b"\x02" * 8, name="x")
    assert message_from_json(json_format.MessageToDict(original), Span, HEX_OR_BASE64) == original
    assert message_from_json({"traceId": TRACE_HEX}, Span, HEX_OR_BASE64).trace_id == bytes.fromhex(TRACE_HEX)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"traceId": "AAECAwQFBgcICQoLDA0ODw=="}, "traceId: traceId must be a 32-digit hex string in OTLP/JSON"),
        ({"links": [{}, {"spanId": 12345}]}, "links[1].spanId: spanId must be a 16-digit hex string"),
        ({"name": 5}, "name: expected a string, not 5"),
        ({"kind": "NOPE"}, "kind: 'NOPE' is not a value of SpanKind (SPAN_KIND_UNSPECIFIED, "),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano: expected an integer"),
        ({"attributes": {"key": "x"}}, "attributes: expected a list, not dict"),
        ({"attributes": [None]}, "attributes[0]: null is not allowed in a list"),
        ({"attributes": [{"value": {"boolValue": "true"}}]}, "attributes[0].value.boolValue: expected true or false"),
        ({"status": []}, "status: expected an object, not list"),
        ({"droppedAttributesCount": 2**40}, "droppedAttributesCount: 1099511627776 is out of range (0 to 4294967295)"),
        ([], "the document: expected an object, not list"),
    ],
)
def test_what_is_no_span_is_one_error_naming_the_field(document, message):
    with pytest.raises(InvalidOTLPError) as raised:
        message_from_json(document, Span, HEX)
    assert str(raised.value).startswith(message)


def test_nesting_too_deep_is_an_error_not_a_crash():
    value: dict = {"stringValue": "bottom"}
    for _ in range(5000):
        value = {"arrayValue": {"values": [value]}}
    with pytest.raises(InvalidOTLPError, match="nested too deeply"):
        message_from_json({"attributes": [{"key": "deep", "value": value}]}, Span)

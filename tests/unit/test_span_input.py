import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.errors import InvalidGoldenSpanError
from testopeninference.span_input import as_span, span_from_dict
from tests.helpers import SPANS

TRACE_HEX, SPAN_HEX = "5b8efff798038103d269b633813fc60c", "EEE19B7EC3C1B174"


def otlp_json_span() -> dict:
    return {
        "traceId": TRACE_HEX,
        "spanId": SPAN_HEX,
        "parentSpanId": "eee19b7ec3c1b173",
        "name": "ChatCompletion",
        "kind": 1,
        "startTimeUnixNano": 1544712660000000000,
        "attributes": [{"key": "llm.token_count.total", "value": {"intValue": "7"}}],
        "links": [{"traceId": TRACE_HEX, "spanId": SPAN_HEX}],
        "someFutureField": True,
    }


def test_otlp_json_hex_ids_are_decoded_not_misread_as_base64():
    span = span_from_dict(otlp_json_span())
    assert span.trace_id == bytes.fromhex(TRACE_HEX)
    assert span.span_id == bytes.fromhex(SPAN_HEX)
    assert span.links[0].trace_id == bytes.fromhex(TRACE_HEX)
    assert span.kind == Span.SPAN_KIND_INTERNAL and span.start_time_unix_nano == 1544712660000000000


def test_protojson_base64_ids_are_kept():
    original = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="x")
    assert span_from_dict(json_format.MessageToDict(original)) == original


def test_an_export_request_with_one_span_is_accepted():
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [otlp_json_span()]}]}]}
    assert span_from_dict(request).name == "ChatCompletion"
    two = {"resourceSpans": [{"scopeSpans": [{"spans": [otlp_json_span(), otlp_json_span()]}]}]}
    with pytest.raises(InvalidGoldenSpanError, match="with 2 spans; pass one span"):
        span_from_dict(two)


def test_files_spans_and_collected_spans(tmp_path: Path):
    golden = as_span(SPANS / "chat-basic.json")
    assert golden.name == "ChatCompletion"
    assert as_span(str(SPANS / "chat-basic.json")) == golden
    assert as_span(golden) is golden

    class Collected:
        span = golden

    assert as_span(Collected()) is golden
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(InvalidGoldenSpanError, match="broken.json: cannot read a span"):
        as_span(broken)
    with pytest.raises(TypeError, match="cannot make a Span from int"):
        as_span(3)


def test_not_a_span_is_an_error():
    with pytest.raises(InvalidGoldenSpanError, match="not an OpenTelemetry Span"):
        span_from_dict({"name": 3, "kind": "NOPE"})
    assert json.loads(json.dumps(otlp_json_span()))  # the fixture itself is plain JSON

"""The collector's faults: multi-member gzip, trailing zeros, id sizes, and the bound on kept spans."""

import gzip
import json

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from testopeninference.recorder.collector import InMemoryOTLPCollector
from testopeninference.recorder.otlp_decoding import RequestError, decompress

PROTOBUF = "application/x-protobuf"


def traces(*names: str, trace_id: bytes = b"\x01" * 16, span_id: bytes = b"\x02" * 8) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for name in names:
        scope_spans.spans.add(trace_id=trace_id, span_id=span_id, name=name)
    return request.SerializeToString()


@pytest.fixture
def collector():
    with InMemoryOTLPCollector() as running:
        yield running


def post(collector, body: bytes, **headers) -> httpx.Response:
    headers = {"Content-Type": PROTOBUF, **headers}
    return httpx.post(f"{collector.endpoint}/v1/traces", content=body, headers=headers, timeout=30)


def test_a_multi_member_gzip_body_of_megabytes_is_decoded_whole(collector):
    payload = traces(*(f"span-{i}" for i in range(40_000)))
    pieces = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
    body = b"".join(gzip.compress(piece, compresslevel=0) for piece in pieces)  # stored: megabytes
    assert len(body) > 1_000_000
    assert post(collector, body, **{"Content-Encoding": "gzip"}).status_code == 200
    assert [item.span.name for item in collector.spans()] == [f"span-{i}" for i in range(40_000)]


def test_thousands_of_gzip_members_inflate_in_one_pass():
    data = bytes(range(256)) * 16
    body = b"".join(gzip.compress(data[i : i + 1]) for i in range(4000))
    assert decompress(body, "gzip", 1 << 20) == data[:4000]


def test_gzip_followed_by_zero_bytes_is_accepted(collector):
    body = gzip.compress(traces("padded")) + b"\x00" * 512
    assert post(collector, body, **{"Content-Encoding": "gzip"}).status_code == 200
    assert collector.spans()[0].span.name == "padded"


def test_a_gzip_bomb_is_refused_without_inflating_it_all():
    bomb = gzip.compress(b"\x00" * (8 << 20))
    with pytest.raises(RequestError) as refused:
        decompress(bomb, "gzip", 1 << 20)
    assert refused.value.status == 413


@pytest.mark.parametrize(
    "ids", [{"trace_id": b"\x01" * 15}, {"span_id": b"\x02" * 9}], ids=["short-trace-id", "long-span-id"]
)
def test_protobuf_ids_of_the_wrong_size_are_400(collector, ids):
    response = post(collector, traces("bad", **ids))
    assert response.status_code == 400 and collector.spans() == ()


def test_empty_ids_stay_allowed(collector):
    assert post(collector, traces("no ids", trace_id=b"", span_id=b"")).status_code == 200


def test_json_values_of_the_wrong_type_are_400(collector):
    span = {"name": "x", "attributes": [{"key": "a", "value": {"intValue": "abc"}}]}
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    response = httpx.post(
        f"{collector.endpoint}/v1/traces", json=document, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert response.status_code == 400 and "intValue" in response.json()["message"]


def test_kept_spans_are_bounded_and_the_dropped_ones_counted():
    with InMemoryOTLPCollector(max_spans=3) as running:
        for batch in (("a", "b"), ("c", "d"), ("e",)):
            assert post(running, traces(*batch)).status_code == 200
        assert [item.span.name for item in running.spans()] == ["c", "d", "e"]
        assert running.dropped_spans == 2


def test_stop_is_prompt_and_leaves_no_thread():
    import threading

    before = {thread.ident for thread in threading.enumerate()}
    running = InMemoryOTLPCollector().start()
    client = httpx.Client()
    client.post(f"{running.endpoint}/v1/traces", content=traces("x"), headers={"Content-Type": PROTOBUF})
    running.stop()  # with a keep-alive connection still open
    client.close()
    assert {thread.ident for thread in threading.enumerate()} <= before


def test_kept_items_are_the_dataclasses_their_constructors_make():
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    from testopeninference.recorder.collector import CollectedLogRecord, CollectedSpan

    collector = InMemoryOTLPCollector()
    collector.add(trace_service_pb2.ExportTraceServiceRequest.FromString(traces("a")))
    logs = logs_service_pb2.ExportLogsServiceRequest()
    logs.resource_logs.add().scope_logs.add().log_records.add(trace_id=b"\x01" * 16)
    collector.add(logs)
    (span,), (record,) = collector.spans(), collector.log_records()
    assert span == CollectedSpan(span.resource, span.scope, span.span) and type(span) is CollectedSpan
    assert record == CollectedLogRecord(record.resource, record.scope, record.log_record)


@pytest.mark.parametrize("field", ["parent_span_id", "link"])
def test_protobuf_parent_and_link_ids_of_the_wrong_size_are_400(collector, field):
    request = trace_service_pb2.ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    if field == "link":
        span.links.add(trace_id=b"\x01" * 16, span_id=b"\x03" * 7)
    else:
        span.parent_span_id = b"\x03" * 4
    response = post(collector, request.SerializeToString())
    assert response.status_code == 400 and collector.spans() == ()

"""OTLP/HTTP conformance of the in-memory collector, over real HTTP on 127.0.0.1.

Each case is a hand-made request: the two encodings (binary protobuf and OTLP/JSON
with its hex ids), compression, chunked framing, the size limit before and after
inflation, and the error answers the specification asks for.
"""

import gzip
import http.client
import json
import socket
import time
import tracemalloc
import zlib
from urllib.parse import urlsplit

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from testopeninference.recorder.collector import InMemoryOTLPCollector
from testopeninference.recorder.otlp_decoding import RequestError, decompress

PROTOBUF, JSON = "application/x-protobuf", "application/json"
TRACE_HEX, SPAN_HEX, PARENT_HEX = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173"
LIMIT = 64 * 1024


@pytest.fixture
def collector():
    with InMemoryOTLPCollector() as running:
        yield running


@pytest.fixture
def small_collector():
    with InMemoryOTLPCollector(max_body_bytes=LIMIT, read_timeout=0.5) as running:
        yield running


def post(collector, body, content_type=PROTOBUF, path="/v1/traces", **headers) -> httpx.Response:
    headers = {"Content-Type": content_type, **headers} if content_type else headers
    return httpx.post(f"{collector.endpoint}{path}", content=body, headers=headers, timeout=5)


def raw_post(collector, headers: dict[str, str], body: bytes = b"", hang_up=False) -> tuple[int, dict, bytes]:
    """A request written by hand on a socket, for framing no HTTP client would produce."""
    address = urlsplit(collector.endpoint)
    head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": "test", **headers}.items())
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(f"POST /v1/traces HTTP/1.1\r\n{head}\r\n".encode() + body)
        if hang_up:  # the client is done sending, yet still reads the answer
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def rpc_status(response: httpx.Response) -> status_pb2.Status:
    """The google.rpc.Status of an error answer, in whichever encoding it came."""
    if response.headers["content-type"] == JSON:
        return json_format.Parse(response.text, status_pb2.Status())
    assert response.headers["content-type"] == PROTOBUF
    return status_pb2.Status.FromString(response.content)


def protobuf_traces(name="span") -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    scope_spans.scope.name = "proto.scope"
    scope_spans.spans.add(trace_id=bytes.fromhex(TRACE_HEX), span_id=bytes.fromhex(SPAN_HEX), name=name)
    return request.SerializeToString()


def json_traces(**span_fields) -> dict:
    span = {"traceId": TRACE_HEX, "spanId": SPAN_HEX, "name": "GET /", **span_fields}
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-service"}}]},
                "scopeSpans": [{"scope": {"name": "json.scope", "version": "1.0"}, "spans": [span]}],
            }
        ]
    }


def json_logs(**record_fields) -> dict:
    record = {"traceId": TRACE_HEX, "spanId": SPAN_HEX, "body": {"stringValue": "hello"}, **record_fields}
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-service"}}]},
                "scopeLogs": [{"scope": {"name": "json.logs"}, "logRecords": [record]}],
            }
        ]
    }


# --- encodings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [str.lower, str.upper], ids=["lower-hex", "upper-hex"])
def test_json_traces_read_hex_ids_in_either_case(collector, case):
    link = {"traceId": case("0af7651916cd43dd8448eb211c80319c"), "spanId": case("b7ad6b7169203331")}
    document = json_traces(traceId=case(TRACE_HEX), spanId=case(SPAN_HEX), parentSpanId=case(PARENT_HEX), links=[link])
    response = post(collector, json.dumps(document), JSON)
    assert (response.status_code, response.headers["content-type"], response.json()) == (200, JSON, {})
    (item,) = collector.spans()
    assert (item.span.trace_id, item.span.span_id, item.span.parent_span_id) == tuple(
        bytes.fromhex(hex_id) for hex_id in (TRACE_HEX, SPAN_HEX, PARENT_HEX)
    )
    assert item.span.links[0].trace_id == bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    assert item.span.links[0].span_id == bytes.fromhex("b7ad6b7169203331")
    assert (item.scope.name, item.resource.attributes[0].value.string_value) == ("json.scope", "json-service")


@pytest.mark.parametrize(
    "kind, status_code, nanos, int_value",
    [("SPAN_KIND_CLIENT", "STATUS_CODE_ERROR", "1700000000000000001", "42"), (3, 2, 1700000000000000001, 42)],
    ids=["names-and-strings", "integers-and-numbers"],
)
def test_json_enums_int64_and_unknown_fields(collector, kind, status_code, nanos, int_value):
    span_fields = {
        "kind": kind,
        "status": {"code": status_code, "message": "boom"},
        "startTimeUnixNano": nanos,
        "attributes": [{"key": "n", "value": {"intValue": int_value}}],
        "fieldFromTheFuture": {"nested": [1, 2]},
    }
    document = {**json_traces(**span_fields), "anotherUnknownField": True}
    assert post(collector, json.dumps(document), JSON).status_code == 200
    span = collector.spans()[0].span
    assert (span.kind, span.status.code, span.start_time_unix_nano) == (3, 2, 1700000000000000001)
    assert span.attributes[0].value.int_value == 42


@pytest.mark.parametrize("severity", ["SEVERITY_NUMBER_WARN", 13])
def test_json_logs_read_hex_ids_enums_and_int64(collector, severity):
    document = json_logs(traceId=TRACE_HEX.upper(), severityNumber=severity, timeUnixNano="1700000000000000000")
    response = post(collector, json.dumps(document), JSON, path="/v1/logs")
    assert (response.status_code, response.json()) == (200, {})
    (item,) = collector.log_records()
    record = item.log_record
    assert (record.trace_id, record.span_id) == (bytes.fromhex(TRACE_HEX), bytes.fromhex(SPAN_HEX))
    assert (record.severity_number, record.time_unix_nano, record.body.string_value) == (13, 1700000000000000000, "hello")
    assert (item.scope.name, item.resource.attributes[0].value.string_value) == ("json.logs", "json-service")


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json; charset=utf-8", json.dumps(json_traces())),
        ("Application/JSON;Charset=UTF-8", json.dumps(json_traces())),
        ("Application/X-Protobuf", protobuf_traces()),
    ],
    ids=["json-charset", "json-mixed-case", "protobuf-mixed-case"],
)
def test_media_types_compare_case_insensitively_and_ignore_parameters(collector, content_type, body):
    response = post(collector, body, content_type)
    assert (response.status_code, response.headers["content-type"]) == (200, content_type.split(";")[0].lower())
    assert len(collector.spans()) == 1


@pytest.mark.parametrize(
    "where, bad_id",
    [
        ("traceId", "xyz"),
        ("traceId", "5b8efff798038103d269b633813fc60"),  # odd length
        ("traceId", "5b8efff798038103d269b633813fc6"),  # 15 bytes
        ("traceId", "W47/95gDgQPSabYzgT/GDA=="),  # base64, as protobuf's own JSON mapping would have it
        ("traceId", "5b 8e ff f7 98 03 81 03 d2 69 b6 33 81 3f c6 0c"),
        ("spanId", 12345),
        ("parentSpanId", "nothex!!"),
        ("links", [{"traceId": TRACE_HEX, "spanId": "zz"}]),
    ],
)
def test_invalid_hex_ids_are_400_answered_in_json(collector, where, bad_id):
    response = post(collector, json.dumps(json_traces(**{where: bad_id})), JSON)
    assert (response.status_code, response.headers["content-type"]) == (400, JSON)
    assert set(response.json()) == {"code", "message"}
    error = rpc_status(response)
    assert error.code == code_pb2.INVALID_ARGUMENT and "hex" in error.message
    assert collector.spans() == ()


def test_invalid_log_record_id_is_400(collector):
    response = post(collector, json.dumps(json_logs(spanId="0102")), JSON, path="/v1/logs")
    assert response.status_code == 400 and "spanId" in rpc_status(response).message


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"resourceSpans": 5}', b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}'],
)
def test_undecodable_json_is_400_in_json(collector, body):
    response = post(collector, body, JSON)
    assert (response.status_code, response.headers["content-type"]) == (400, JSON)
    assert rpc_status(response).code == code_pb2.INVALID_ARGUMENT


@pytest.mark.parametrize("media", [PROTOBUF, JSON])
@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs"])
def test_empty_body_is_200(collector, media, path):
    response = post(collector, b"", media, path=path)
    assert (response.status_code, response.headers["content-type"]) == (200, media)
    assert collector.spans() == () and collector.log_records() == ()


def test_no_content_length_and_no_body_is_200(collector):
    assert raw_post(collector, {"Content-Type": PROTOBUF})[0] == 200


# --- compression and framing ---------------------------------------------------------------------------------

def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # zlib.compress takes wbits only from Python 3.11
    return compressor.compress(data) + compressor.flush()


COMPRESSORS = {
    "gzip": gzip.compress,
    "GZIP": gzip.compress,
    "deflate": zlib.compress,  # the zlib wrapper HTTP's deflate means
    "deflate-raw": lambda data: _raw_deflate(data),  # what some clients send instead
}


@pytest.mark.parametrize("encoding", COMPRESSORS)
@pytest.mark.parametrize("media", [PROTOBUF, JSON])
def test_compressed_bodies(collector, encoding, media):
    body = protobuf_traces() if media == PROTOBUF else json.dumps(json_traces()).encode()
    header = encoding.split("-")[0]
    assert post(collector, COMPRESSORS[encoding](body), media, **{"Content-Encoding": header}).status_code == 200
    assert collector.spans()[0].span.trace_id == bytes.fromhex(TRACE_HEX)


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("gzip", b"\x1f\x8b\x08\x00garbage that is not deflate"),
        ("gzip", gzip.compress(protobuf_traces())[:-12]),  # truncated
        ("gzip", protobuf_traces()),  # not compressed at all
        ("deflate", b"x\x9c\xff\xff\xff"),
    ],
    ids=["corrupt", "truncated", "uncompressed", "corrupt-deflate"],
)
def test_corrupt_compression_is_400(collector, encoding, body):
    response = post(collector, body, **{"Content-Encoding": encoding})
    assert response.status_code == 400
    assert rpc_status(response).code == code_pb2.INVALID_ARGUMENT and encoding in rpc_status(response).message


def test_unsupported_content_encoding_is_415(collector):
    response = post(collector, protobuf_traces(), **{"Content-Encoding": "br"})
    assert response.status_code == 415 and "Content-Encoding" in rpc_status(response).message


def test_chunked_body_without_content_length(collector):
    body = gzip.compress(protobuf_traces("chunked"))
    pieces = [body[:5], body[5:20], body[20:]]
    chunks = b"".join(b"%x%s\r\n%s\r\n" % (len(piece), b";ext=1" * (i == 1), piece) for i, piece in enumerate(pieces))
    headers = {"Content-Type": PROTOBUF, "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"}
    status, _, content = raw_post(collector, headers, chunks + b"0\r\nX-Trailer: ignored\r\n\r\n")
    assert status == 200
    trace_service_pb2.ExportTraceServiceResponse.FromString(content)
    assert collector.spans()[0].span.name == "chunked"


def test_chunked_body_from_a_streaming_client(collector):
    body = json.dumps(json_logs()).encode()
    response = post(collector, iter([body[:10], body[10:]]), JSON, path="/v1/logs")  # httpx streams it chunked
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 200 and len(collector.log_records()) == 1


@pytest.mark.parametrize(
    "framing", [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXY0\r\n\r\n", b"3\r\nab", b"3\r\nabc\r\n"],
    ids=["bad-size", "no-crlf", "ends-mid-chunk", "no-last-chunk"],
)
def test_malformed_chunked_framing_is_400(collector, framing):
    headers = {"Content-Type": PROTOBUF, "Transfer-Encoding": "chunked"}
    status, _, content = raw_post(collector, headers, framing, hang_up=True)
    message = status_pb2.Status.FromString(content).message
    assert status == 400 and ("chunk" in message or "ended" in message)


@pytest.mark.parametrize(
    "headers, status",
    [({"Content-Length": "abc"}, 400), ({"Transfer-Encoding": "gzip, chunked"}, 501)],
)
def test_invalid_framing_headers(collector, headers, status):
    code, _, content = raw_post(collector, {"Content-Type": PROTOBUF, **headers})
    assert code == status and status_pb2.Status.FromString(content).message


# --- limits and timeouts -------------------------------------------------------------------------------------


def test_body_at_the_limit_is_read_and_one_byte_over_is_413(small_collector):
    at_limit = post(small_collector, b"\xff" * LIMIT)
    assert at_limit.status_code == 400  # read and decoded (it is garbage), not refused for its size
    over = post(small_collector, b"\x00" * (LIMIT + 1))
    assert over.status_code == 413 and rpc_status(over).code == code_pb2.RESOURCE_EXHAUSTED


def test_a_large_refused_body_still_gets_its_413(small_collector):
    response = post(small_collector, b"\x00" * (8 * 1024 * 1024), JSON)  # the collector drains it, so no reset
    assert (response.status_code, response.headers["content-type"]) == (413, JSON)


def test_chunked_body_over_the_limit_is_413(small_collector):
    response = post(small_collector, iter([b"\x00" * LIMIT, b"\x00"]))
    assert response.status_code == 413


@pytest.mark.parametrize("encoding, compress", [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_small_compressed_body_inflating_past_the_limit_is_413_quickly(small_collector, encoding, compress):
    bomb = compress(bytes(10 * 1024 * 1024))
    assert len(bomb) < LIMIT
    started = time.monotonic()
    response = post(small_collector, bomb, **{"Content-Encoding": encoding})
    assert response.status_code == 413 and "inflates past" in rpc_status(response).message
    assert time.monotonic() - started < 2


def test_decompress_stops_at_the_limit_instead_of_inflating_everything():
    bomb = gzip.compress(bytes(10 * 1024 * 1024))
    tracemalloc.start()
    try:
        with pytest.raises(RequestError) as refused:
            decompress(bomb, "gzip", LIMIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.status == 413 and peak < 1024 * 1024


def test_decompress_reads_concatenated_gzip_members_up_to_exactly_the_limit():
    half = b"x" * (LIMIT // 2)
    assert decompress(gzip.compress(half) + gzip.compress(half), "gzip", LIMIT) == half + half
    with pytest.raises(RequestError):
        decompress(gzip.compress(half) + gzip.compress(half + b"!"), "gzip", LIMIT)


def test_a_client_that_sends_less_than_it_announced_does_not_hold_the_collector(small_collector):
    address = urlsplit(small_collector.endpoint)
    with socket.create_connection((address.hostname, address.port), timeout=5) as stalled:
        stalled.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        assert post(small_collector, protobuf_traces()).status_code == 200  # others are served meanwhile
        response = http.client.HTTPResponse(stalled)
        response.begin()
        assert response.status == 408 and json.loads(response.read())["code"] == code_pb2.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 3


def test_expect_100_continue_refuses_an_oversized_body_before_it_is_sent(small_collector):
    headers = {"Content-Type": PROTOBUF, "Content-Length": str(LIMIT + 1), "Expect": "100-continue"}
    assert raw_post(small_collector, headers)[0] == 413  # no body sent: the answer must come anyway
    body = protobuf_traces()
    headers = {"Content-Type": PROTOBUF, "Content-Length": str(len(body)), "Expect": "100-continue"}
    assert raw_post(small_collector, headers, body)[0] == 200  # http.client skips the 100 Continue


# --- refusals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/protobuf", "application/jsonx", None])
def test_other_content_types_are_415_with_a_protobuf_status(collector, content_type):
    response = post(collector, b"{}", content_type)
    assert response.status_code == 415
    assert rpc_status(response).code == code_pb2.INVALID_ARGUMENT and PROTOBUF in rpc_status(response).message


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs"])
def test_other_methods_on_otlp_paths_are_405_with_allow(collector, method, path):
    response = httpx.request(method, f"{collector.endpoint}{path}", timeout=5)
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    if method != "HEAD":
        assert method in rpc_status(response).message


@pytest.mark.parametrize("method, path", [("POST", "/v1/metrics"), ("POST", "/"), ("POST", "/v1/traces/x"), ("GET", "/")])
def test_other_paths_are_404(collector, method, path):
    response = httpx.request(method, f"{collector.endpoint}{path}", content=protobuf_traces(), timeout=5)
    assert response.status_code == 404 and "/v1/traces" in rpc_status(response).message


def test_errors_for_json_requests_are_json(collector):
    not_found = post(collector, b"{}", JSON, path="/v1/metrics")
    not_allowed = httpx.get(f"{collector.endpoint}/v1/logs", headers={"Content-Type": JSON}, timeout=5)
    for response, status in [(not_found, 404), (not_allowed, 405)]:
        assert (response.status_code, response.headers["content-type"]) == (status, JSON)
        assert rpc_status(response).message


def test_a_query_string_does_not_change_the_path(collector):
    assert post(collector, protobuf_traces(), path="/v1/traces?tenant=a").status_code == 200


# --- connections ---------------------------------------------------------------------------------------------


def test_one_connection_carries_several_exports_and_survives_an_error(collector):
    with httpx.Client(base_url=collector.endpoint, headers={"Content-Type": PROTOBUF}, timeout=5) as client:
        codes = [client.post(path, content=body).status_code for path, body in [
            ("/v1/traces", protobuf_traces("one")), ("/v1/traces", b"\xff garbage"), ("/v1/traces", protobuf_traces("two"))
        ]]
    assert codes == [200, 400, 200]
    assert [item.span.name for item in collector.spans()] == ["one", "two"]


def test_binds_loopback_on_a_free_port():
    with InMemoryOTLPCollector() as first, InMemoryOTLPCollector(port=0) as second:
        hosts_and_ports = [(urlsplit(c.endpoint).hostname, urlsplit(c.endpoint).port) for c in (first, second)]
    assert [host for host, _ in hosts_and_ports] == ["127.0.0.1", "127.0.0.1"]
    assert hosts_and_ports[0][1] != hosts_and_ports[1][1] and 0 not in [port for _, port in hosts_and_ports]


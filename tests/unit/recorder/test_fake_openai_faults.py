"""The fake server under bad framing and misbehaving clients, over raw sockets on 127.0.0.1.

Every request gets an HTTP answer with a JSON body naming the cause; never a dropped connection.
"""

import http.client
import json
import shutil
import socket

import httpx
import pytest

from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer
from testopeninference.recorder.loopback import ConnectionLimits, H11LoopbackProtocol, HttpToolsLoopbackProtocol, LoopbackProtocol
from tests.helpers import CASSETTES

CHAT_BODY = json.dumps({"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "Hi"}]}).encode()


@pytest.fixture
def server():
    with FakeOpenAIServer(CassetteReplayer(CassetteLibrary(CASSETTES))) as running:
        yield running


def connect(server, timeout=5.0) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_response(sock: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def raw_request(server, head: str, body: bytes = b"") -> tuple[int, dict]:
    with connect(server) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        return read_response(sock)


def test_a_256_character_cassette_name_gets_a_json_400(server):
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-Cassette-Name: {'a' * 256}\r\nContent-Length: 2\r\n"
    status, body = raw_request(server, head, b"{}")
    assert status == 400 and "name" in body["error"]["message"]


def test_deeply_nested_json_gets_a_json_400(server):
    deep = b"[" * 100_000 + b"]" * 100_000
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-Cassette-Name: chat-basic\r\nContent-Length: {len(deep)}\r\n"
    status, body = raw_request(server, head, deep)
    assert status == 400 and "nests too deeply" in body["error"]["message"]


def test_a_broken_cassette_spoils_only_its_own_requests(tmp_path):
    shutil.copy(CASSETTES / "chat-basic.yaml", tmp_path / "chat-basic.yaml")
    (tmp_path / "broken.yaml").write_text("version: 2\ninteractions: [\n")
    not_json = (CASSETTES / "chat-basic.yaml").read_text().replace("body: |-\n", "body: |-\n            not json\n", 1)
    (tmp_path / "not-json.yaml").write_text(not_json)
    recorded = CassetteLibrary(CASSETTES).load("chat-basic").request
    with FakeOpenAIServer(CassetteReplayer(CassetteLibrary(tmp_path))) as running, httpx.Client() as client:

        def post(name: str | None) -> httpx.Response:
            headers = {"Content-Type": "application/json", **({"X-Cassette-Name": name} if name else {})}
            return client.post(f"{running.url}{recorded.path}", content=recorded.body, headers=headers, timeout=5)

        broken, not_json_answer, good, unnamed = post("broken"), post("not-json"), post("chat-basic"), post(None)
    assert broken.status_code == 500 and "broken.yaml" in broken.json()["error"]["message"]
    assert not_json_answer.status_code == 500 and "not-json.yaml" in not_json_answer.json()["error"]["message"]
    assert good.status_code == 200 and unnamed.status_code == 200


def test_a_slow_header_client_gets_408():
    limits = ConnectionLimits(header_timeout=0.3)
    with FakeOpenAIServer(CassetteReplayer(CassetteLibrary(CASSETTES)), limits=limits) as running:
        with connect(running) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n")  # and never the rest
            status, body = read_response(sock)
    assert status == 408 and "headers" in body["error"]["message"]


def test_connections_over_the_limit_get_a_json_503():
    limits = ConnectionLimits(max_connections=2)
    with FakeOpenAIServer(CassetteReplayer(CassetteLibrary(CASSETTES)), limits=limits) as running:
        held = [connect(running), connect(running)]
        try:
            with connect(running) as extra:
                extra.sendall(b"GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n")
                status, body = read_response(extra)
        finally:
            for sock in held:
                sock.close()
    assert status == 503 and "limit" in body["error"]["message"]


def test_requests_are_kept_per_cassette_up_to_the_bound():
    replayer = CassetteReplayer(CassetteLibrary(CASSETTES), requests_kept=3)
    recorded = replayer.library.load("chat-basic").request
    with FakeOpenAIServer(replayer) as running, httpx.Client() as client:
        for _ in range(5):
            headers = {"X-Cassette-Name": "chat-basic", "Content-Type": "application/json"}
            client.post(f"{running.url}{recorded.path}", content=recorded.body, headers=headers, timeout=5)
        client.post(f"{running.url}{recorded.path}", content=b"{}", headers={"X-Cassette-Name": "other"}, timeout=5)
    names = [request.headers.get("x-cassette-name") for request in replayer.received]
    assert names == ["chat-basic"] * 3 + ["other"]


# --- the same framing answers from both parsers, and the deadlines kept by the sweeper -----------------------


@pytest.fixture(params=["httptools", "h11"])
def either_server(request):
    """The server on each protocol class: llhttp's (the default when httptools is installed) and h11's fallback."""
    server = FakeOpenAIServer(CassetteReplayer(CassetteLibrary(CASSETTES)))
    if request.param == "h11":
        server.protocol_class = H11LoopbackProtocol
    elif LoopbackProtocol is not HttpToolsLoopbackProtocol:
        pytest.skip("httptools is not installed")
    with server as running:
        yield running


@pytest.mark.parametrize("length", ["abc", "-5", "99999999999999999999"])
def test_bad_content_length_gets_a_json_4xx_on_either_parser(either_server, length):
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n"
    status, body = raw_request(either_server, head, b"{}")
    assert 400 <= status < 500 and body["error"]["message"]


def test_chunked_body_then_a_second_request_on_either_parser(either_server):
    recorded = CassetteLibrary(CASSETTES).load("chat-basic").request
    payload = recorded.body.encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:7], payload[7:])) + b"0\r\n\r\n"
    head = (
        f"POST {recorded.path} HTTP/1.1\r\nHost: t\r\nX-Cassette-Name: chat-basic\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with connect(either_server) as sock:
        for _ in range(2):
            sock.sendall(head.encode() + chunked)
            status, body = read_response(sock)
            assert status == 200 and body["choices"]


def test_a_malformed_chunk_gets_a_json_400_on_either_parser(either_server):
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
    status, body = raw_request(either_server, head, b"zz\r\n{}\r\n0\r\n\r\n")
    assert status == 400 and "chunked" in body["error"]["message"]


def test_an_unknown_transfer_encoding_gets_a_json_501_on_either_parser(either_server):
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n"
    status, body = raw_request(either_server, head, b"0\r\n\r\n")
    assert status == 501 and "Transfer-Encoding" in body["error"]["message"]


def test_oversized_headers_get_a_json_431_on_either_parser(either_server):
    filler = "X-Filler: " + "a" * 1000 + "\r\n"
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n" + filler * 80  # 80 kB, over the 64 KiB bound
    with connect(either_server) as sock:
        sock.sendall(head.encode())  # and no end of the headers in sight
        status, body = read_response(sock)
    assert status == 431 and body["error"]["message"]


@pytest.mark.parametrize("protocol", [HttpToolsLoopbackProtocol, H11LoopbackProtocol], ids=["httptools", "h11"])
def test_a_stalled_body_gets_a_json_408(protocol):
    if protocol is not H11LoopbackProtocol and LoopbackProtocol is not HttpToolsLoopbackProtocol:
        pytest.skip("httptools is not installed")
    server = FakeOpenAIServer(CassetteReplayer(CassetteLibrary(CASSETTES)), limits=ConnectionLimits(body_timeout=0.3))
    server.protocol_class = protocol
    with server as running, connect(running) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
        status, body = read_response(sock)
    assert status == 408 and "body" in body["error"]["message"] and body["error"]["code"] == "request_timeout"


@pytest.mark.parametrize("protocol", [HttpToolsLoopbackProtocol, H11LoopbackProtocol], ids=["httptools", "h11"])
def test_an_idle_keep_alive_connection_is_closed(protocol):
    if protocol is not H11LoopbackProtocol and LoopbackProtocol is not HttpToolsLoopbackProtocol:
        pytest.skip("httptools is not installed")
    limits = ConnectionLimits(idle_timeout=0.3)
    server = FakeOpenAIServer(CassetteReplayer(CassetteLibrary(CASSETTES)), limits=limits)
    server.protocol_class = protocol
    with server as running, connect(running) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n")
        read_response(sock)
        assert sock.recv(1) == b""  # closed by the server (the socket's 5 s timeout bounds the wait)

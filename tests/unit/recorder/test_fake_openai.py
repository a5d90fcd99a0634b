import json

import httpx
import pytest

from testopeninference.recorder.cassette import CassetteLibrary, load_cassette
from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer, split_events
from testopeninference.recorder.matchers import IncomingRequest
from tests.helpers import CASSETTES


@pytest.fixture
def replayer():
    return CassetteReplayer(CassetteLibrary(CASSETTES))


def request_for(name: str, *, header: str | None = None, body: object = None) -> IncomingRequest:
    recorded = load_cassette(CASSETTES / f"{name}.yaml").request
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["x-cassette-name"] = header
    raw = json.dumps(recorded.json() if body is None else body).encode()
    return IncomingRequest("POST", recorded.path, headers, raw)


def test_split_events_keeps_each_event_whole():
    body = 'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    assert split_events(body) == ['data: {"a":1}\n\n', 'data: {"b":2}\n\n', "data: [DONE]\n\n"]


def test_split_events_splits_on_newlines_only():
    body = 'data: {"t":"a\u2028b\x85c\x0cd"}\r\n\r\ndata: [DONE]\n\n'
    assert split_events(body) == ['data: {"t":"a\u2028b\x85c\x0cd"}\n\n', "data: [DONE]\n\n"]


def test_split_events_keeps_multi_line_events():
    body = "event: response.created\ndata: {}\n\nevent: done\ndata: {}\n"
    assert split_events(body) == ["event: response.created\ndata: {}\n\n", "event: done\ndata: {}\n\n"]


def test_replays_recorded_status_headers_and_body(replayer):
    response = replayer.handle(request_for("chat-basic", header="chat-basic"))
    recorded = load_cassette(CASSETTES / "chat-basic.yaml").interactions[0].response
    assert response.status == 200
    assert json.loads(b"".join(response.chunks)) == json.loads(recorded.body)
    assert ("Content-Type", "application/json") in response.headers
    assert not any(k.lower() == "content-length" for k, _ in response.headers)
    assert replayer.play_counts["chat-basic"] == 1


def test_streaming_cassette_is_replayed_event_by_event(replayer):
    response = replayer.handle(request_for("chat-streaming", header="chat-streaming"))
    assert response.streamed
    assert len(response.chunks) > 3
    assert all(chunk.endswith(b"\n\n") for chunk in response.chunks)
    assert response.chunks[-1] == b"data: [DONE]\n\n"


def test_error_cassette_replays_its_status(replayer):
    assert replayer.handle(request_for("chat-bad-request", header="chat-bad-request")).status == 400


def test_without_header_the_matching_cassette_is_replayed(replayer):
    assert replayer.handle(request_for("embeddings-basic")).status == 200


def error_message(response) -> str:
    return json.loads(b"".join(response.chunks))["error"]["message"]


def test_400_without_header_and_no_match(replayer):
    response = replayer.handle(request_for("chat-basic", body={"model": "nobody-sent-this", "messages": []}))
    assert response.status == 400
    assert error_message(response).startswith("no X-Cassette-Name header and no cassette in ")
    assert "Send the header X-Cassette-Name: <cassette name>." in error_message(response)


def test_400_without_a_match_names_every_folder_searched_users_first(tmp_path):
    replayer = CassetteReplayer(CassetteLibrary(tmp_path / "mine", CASSETTES))
    response = replayer.handle(request_for("chat-basic", body={"model": "nobody-sent-this", "messages": []}))
    assert error_message(response).startswith(
        f"no X-Cassette-Name header and no cassette in {tmp_path / 'mine'} or {CASSETTES} matches POST ")


def test_409_names_the_cassette_file_and_what_differs(replayer):
    response = replayer.handle(request_for("chat-basic", header="chat-basic", body={"model": "other", "messages": []}))
    assert response.status == 409
    message = error_message(response)
    assert str(CASSETTES / "chat-basic.yaml") in message
    assert "body: " in message and "model: cassette" in message
    assert "The gateway changed the request" in message
    assert 'ignore_body_keys=["messages", "model"]' in message
    assert "delete the cassette" not in message
    assert replayer.take_errors("chat-basic")[0].status == 409
    assert replayer.take_errors("chat-basic") == []


def test_500_for_unknown_cassette(replayer):
    response = replayer.handle(request_for("chat-basic", header="chat-basik"))
    assert response.status == 500
    assert "unknown cassette 'chat-basik'" in error_message(response)
    assert "Did you mean: chat-basic" in error_message(response)


def test_server_streams_sse_over_http(replayer):
    cassette = load_cassette(CASSETTES / "chat-streaming.yaml")
    with FakeOpenAIServer(replayer) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        with httpx.stream(
            "POST",
            f"{server.base_url}{cassette.request.path}",
            content=cassette.request.body,
            headers={"X-Cassette-Name": "chat-streaming", "Content-Type": "application/json"},
            timeout=5,
        ) as response:
            assert response.headers["transfer-encoding"] == "chunked"
            body = b"".join(response.iter_bytes()).decode()
    assert split_events(body) == split_events(cassette.interactions[0].response.body)

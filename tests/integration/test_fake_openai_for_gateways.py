"""The fake OpenAI server as a gateway's upstream, over real HTTP on loopback: requests a gateway changes
(dropped headers, added defaults), refusals it can read, model listings and reply headers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from testopeninference.recorder.cassette import CassetteLibrary, load_cassette
from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer
from testopeninference.recorder.model_listing import CREATED
from testopeninference.errors import ConfigurationError, UnknownMatcherError
from testopeninference.kit import FakeOpenAI
from tests.helpers import CASSETTES


def body_of(name: str) -> dict:
    return load_cassette(CASSETTES / f"{name}.yaml").request.json()


def path_of(name: str) -> str:
    return load_cassette(CASSETTES / f"{name}.yaml").request.path


@pytest.fixture
def fake():
    server = FakeOpenAI(CASSETTES).start()
    yield server
    server.stop()


def post(server_url: str, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{server_url}{path}", json=body, headers=headers, timeout=10)


def test_without_the_header_a_unique_body_match_is_replayed_and_attributed(fake):
    response = post(fake.url, path_of("embeddings-basic"), body_of("embeddings-basic"))
    assert response.status_code == 200
    assert [json.loads(r.body) for r in fake.requests("embeddings-basic")] == [body_of("embeddings-basic")]
    assert fake.requests("embeddings-basic")[0].cassette == "embeddings-basic"
    assert fake.errors() == []


def test_requests_by_header_are_attributed_too(fake):
    post(fake.url, path_of("chat-basic"), body_of("chat-basic"), **{"X-Cassette-Name": "chat-basic"})
    assert len(fake.requests("chat-basic")) == 1


def test_ambiguous_match_is_refused_naming_every_candidate(tmp_path: Path):
    shutil.copy(CASSETTES / "chat-basic.yaml", tmp_path / "chat-basic.yaml")
    shutil.copy(CASSETTES / "chat-basic.yaml", tmp_path / "chat-basic-again.yaml")
    fake = FakeOpenAI(tmp_path).start()
    try:
        response = post(fake.url, path_of("chat-basic"), body_of("chat-basic"))
        assert response.status_code == 409
        message = response.json()["error"]["message"]
        assert "2 cassettes match POST /v1/chat/completions equally: chat-basic, chat-basic-again" in message
        assert response.json()["error"]["code"] == "cassette_ambiguous"
        (refused,) = fake.errors()
        assert (refused.cassette, refused.status, refused.method, refused.path) == (None, 409, "POST", path_of("chat-basic"))
        assert fake.requests("chat-basic") == [] and len(fake.requests()) == 1
    finally:
        fake.stop()


def test_an_added_default_is_refused_with_a_hint_naming_the_key(fake):
    changed = {**body_of("chat-basic"), "stream": False}
    response = post(fake.url, path_of("chat-basic"), changed, **{"X-Cassette-Name": "chat-basic"})
    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert "stream not in cassette (request false)" in message
    assert 'The gateway changed the request. If the change is harmless, tolerate it with ignore_body_keys=["stream"]' in message
    assert "testopeninference serve --ignore-body-key stream" in message
    assert "delete the cassette" not in message
    (refused,) = fake.errors()
    assert refused.cassette == "chat-basic" and refused.status == 409
    assert refused.body_keys == ("stream",)
    assert refused.differences == ("body: stream not in cassette (request false)",)
    assert fake.errors() == [refused]  # reading does not consume


def test_without_the_header_no_match_names_the_closest_cassette_and_its_differing_keys(fake):
    changed = {**body_of("chat-basic"), "stream": False}
    response = post(fake.url, path_of("chat-basic"), changed)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "The closest is chat-basic (" in message and "stream not in cassette (request false)" in message
    assert 'ignore_body_keys=["stream"]' in message
    (refused,) = fake.errors()
    assert refused.cassette is None and refused.body_keys == ("stream",)


def test_the_closest_cassette_is_never_one_whose_body_differs_as_a_whole():
    # With "stream" tolerated, chat-openai-agents-python's body shares too little with this one for a key to
    # name the difference (it differs at the root): that is the farthest, not the closest (no key to count).
    fake = FakeOpenAI(CASSETTES, ignore_body_keys=["stream"]).start()
    try:
        response = post(fake.url, path_of("chat-basic"), {**body_of("chat-basic"), "temperature": 0.5})
        assert response.status_code == 400
        assert "The closest is chat-basic (" in response.json()["error"]["message"]
        assert fake.errors()[0].body_keys == ("temperature",)
    finally:
        fake.stop()


def test_ignore_body_keys_tolerates_an_added_stream_false_both_with_and_without_the_header(tmp_path: Path):
    fake = FakeOpenAI(CASSETTES, ignore_body_keys=["stream", "stream_options"]).start()
    try:
        changed = {**body_of("chat-basic"), "stream": False}
        assert post(fake.url, path_of("chat-basic"), changed, **{"X-Cassette-Name": "chat-basic"}).status_code == 200
        # Without the header chat-streaming matches too once stream is ignored; chat-basic differs the least.
        assert post(fake.url, path_of("chat-basic"), changed).status_code == 200
        assert len(fake.requests("chat-basic")) == 2
        assert fake.errors() == []
    finally:
        fake.stop()


def test_ignore_body_keys_with_a_wildcard_tolerates_a_key_inside_every_list_item(tmp_path: Path):
    body = body_of("chat-parallel-tools")
    changed = json.loads(json.dumps(body))
    for tool in changed["tools"]:
        tool["function"]["strict"] = False
    strict = FakeOpenAI(CASSETTES).start()
    tolerant = FakeOpenAI(CASSETTES, ignore_body_keys=["tools.*.function.strict"]).start()
    try:
        refused = post(strict.url, path_of("chat-parallel-tools"), changed, **{"X-Cassette-Name": "chat-parallel-tools"})
        assert refused.status_code == 409
        assert strict.errors()[0].body_keys == ("tools.*.function.strict",)
        replayed = post(tolerant.url, path_of("chat-parallel-tools"), changed)
        assert replayed.status_code == 200
        assert len(tolerant.requests("chat-parallel-tools")) == 1
    finally:
        strict.stop()
        tolerant.stop()


def test_ignore_body_keys_tolerates_a_dropped_key_and_a_changed_value():
    replayer = CassetteReplayer(CassetteLibrary(CASSETTES), ignore_body_keys=["stream_options", "stream"])
    changed = {key: value for key, value in body_of("chat-streaming").items() if key != "stream_options"}
    changed["stream"] = "yes"
    with FakeOpenAIServer(replayer) as server:
        response = post(server.url, path_of("chat-streaming"), changed, **{"X-Cassette-Name": "chat-streaming"})
    assert response.status_code == 200


@pytest.mark.parametrize("keys", [[""], ["tools..strict"], [3]])
def test_malformed_ignore_body_keys_are_one_configuration_error(keys):
    with pytest.raises(ConfigurationError, match="is not a dotted key path"):
        CassetteReplayer(CassetteLibrary(CASSETTES), ignore_body_keys=keys)


def test_an_unknown_matcher_name_fails_when_the_replayer_is_built_listing_the_known_ones():
    with pytest.raises(UnknownMatcherError) as raised:
        CassetteReplayer(CassetteLibrary(CASSETTES), ("method", "bodyy"))
    assert str(raised.value).startswith("unknown matcher 'bodyy' in match_on; use the names method, path, body,")


def test_a_callable_matcher_is_used_by_its_replayer_only():
    def model_only(recorded, incoming):
        if recorded.json()["model"] != json.loads(incoming.body)["model"]:
            raise AssertionError("model differs")

    lenient = CassetteReplayer(CassetteLibrary(CASSETTES), ("method", "path", model_only))
    strict = CassetteReplayer(CassetteLibrary(CASSETTES))
    changed = {**body_of("chat-basic"), "messages": []}
    with FakeOpenAIServer(lenient) as a, FakeOpenAIServer(strict) as b:
        headers = {"X-Cassette-Name": "chat-basic"}
        assert post(a.url, path_of("chat-basic"), changed, **headers).status_code == 200
        assert post(b.url, path_of("chat-basic"), changed, **headers).status_code == 409
        other = {**body_of("chat-basic"), "model": "gpt-other"}
        response = post(a.url, path_of("chat-basic"), other, **headers)
    assert response.status_code == 409 and "model differs" in response.json()["error"]["message"]


def test_on_missing_answers_for_a_named_cassette_no_file_holds(tmp_path: Path):
    calls = []

    def on_missing(name, request):
        calls.append((name, request.path))
        shutil.copy(CASSETTES / "chat-basic.yaml", tmp_path / f"{name}.yaml")
        return CassetteLibrary(tmp_path).load(name)

    replayer = CassetteReplayer(CassetteLibrary(tmp_path), on_missing=on_missing)
    with FakeOpenAIServer(replayer) as server:
        headers = {"X-Cassette-Name": "chat-new"}
        first = post(server.url, path_of("chat-basic"), body_of("chat-basic"), **headers)
        second = post(server.url, path_of("chat-basic"), body_of("chat-basic"), **headers)
    assert first.status_code == second.status_code == 200
    assert calls == [("chat-new", "/v1/chat/completions")]  # the second request replays the saved cassette


def test_on_missing_returning_none_is_the_usual_not_found_error(tmp_path: Path):
    replayer = CassetteReplayer(CassetteLibrary(tmp_path), on_missing=lambda name, request: None)
    with FakeOpenAIServer(replayer) as server:
        response = post(server.url, "/v1/chat/completions", {}, **{"X-Cassette-Name": "chat-new"})
    assert response.status_code == 500 and response.json()["error"]["code"] == "cassette_not_found"


def test_models_listing_is_answered_from_the_models_the_cassettes_use(fake):
    response = httpx.get(f"{fake.base_url}/models", timeout=10)
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list"
    ids = [model["id"] for model in listing["data"]]
    assert "gpt-4.1-nano" in ids and "text-embedding-3-small" in ids and ids == sorted(set(ids))
    assert listing["data"][0] == {"id": ids[0], "object": "model", "created": CREATED, "owned_by": "openai"}
    assert fake.errors() == []


def test_one_model_by_id_and_an_unknown_one_is_404_in_openai_error_shape(fake):
    found = httpx.get(f"{fake.base_url}/models/gpt-4.1-nano", timeout=10)
    assert found.status_code == 200
    assert found.json() == {"id": "gpt-4.1-nano", "object": "model", "created": CREATED, "owned_by": "openai"}
    missing = httpx.get(f"{fake.base_url}/models/gpt-none", timeout=10)
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    assert error["message"].startswith("The model 'gpt-none' does not exist")


def test_azure_deployments_listing(fake):
    response = httpx.get(f"{fake.url}/openai/deployments", params={"api-version": "2022-12-01"}, timeout=10)
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list" and listing["data"]
    first = listing["data"][0]
    assert first["object"] == "deployment" and first["status"] == "succeeded" and first["model"]


def one_header(response: httpx.Response, name: str) -> list[str]:
    return [value for key, value in response.headers.multi_items() if key.lower() == name]


@pytest.mark.parametrize("name", ["chat-basic", "chat-streaming"])
def test_a_replay_carries_exactly_one_date_and_one_server_header_the_cassettes(fake, name):
    recorded = load_cassette(CASSETTES / f"{name}.yaml").interactions[0].response.headers
    response = post(fake.url, path_of(name), body_of(name), **{"X-Cassette-Name": name})
    assert response.status_code == 200
    assert one_header(response, "date") == recorded["Date"]
    assert one_header(response, "server") == recorded["Server"]


def test_a_reply_without_cassette_headers_gets_one_date_and_one_server_of_its_own(fake):
    response = httpx.get(f"{fake.base_url}/models", timeout=10)
    assert len(one_header(response, "date")) == 1 and one_header(response, "server") == ["uvicorn"]
    refused = post(fake.url, "/v1/chat/completions", {"model": "nobody"})
    assert len(one_header(refused, "date")) == 1 and len(one_header(refused, "server")) == 1

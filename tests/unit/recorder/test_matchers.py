import json

from testopeninference.recorder.cassette import load_cassette
from testopeninference.recorder.matchers import IncomingRequest, json_differences, mismatches
from tests.helpers import CASSETTES


def incoming(body: object, path: str = "/v1/chat/completions", method: str = "POST", content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return IncomingRequest(method=method, path=path, headers={"content-type": content_type}, body=raw)


RECORDED = load_cassette(CASSETTES / "chat-basic.yaml").request


def test_json_body_matches_regardless_of_key_order_and_whitespace():
    body = RECORDED.json()
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=7).encode()
    assert mismatches(RECORDED, incoming(reordered)) == []


def test_each_matcher_reports_its_difference():
    found = mismatches(RECORDED, incoming({"model": "other"}, path="/v1/completions", method="PUT"))
    assert found[0] == "method: cassette POST, request PUT"
    assert found[1] == "path: cassette /v1/chat/completions, request /v1/completions"
    assert found[2].startswith("body: ")
    assert "model: cassette" in found[2] and "messages missing from request" in found[2]


def test_non_json_body_is_a_mismatch():
    assert mismatches(RECORDED, incoming(b"not json"))[0].startswith("body: request body is not JSON")


def test_multipart_bodies_are_not_compared():
    audio = load_cassette(CASSETTES / "audio-transcription-basic.yaml").request
    request = incoming(b"--x\r\n", path="/v1/audio/transcriptions", content_type="multipart/form-data; boundary=x")
    assert mismatches(audio, request) == []


def test_azure_path_ignores_query():
    azure = load_cassette(CASSETTES / "azure-chat-basic.yaml").request
    assert mismatches(azure, incoming(azure.json(), path=azure.path)) == []


def test_json_differences_name_paths():
    found = list(json_differences({"a": [1, {"b": 2}], "c": 1}, {"a": [1, {"b": 3}], "d": 1}))
    assert found == [
        "a[1].b: cassette 2, request 3",
        "c missing from request (cassette 1)",
        "d not in cassette (request 1)",
    ]


def test_numbers_compare_by_value_but_not_bool():
    assert list(json_differences({"t": 1}, {"t": 1.0})) == []
    assert list(json_differences({"t": 1}, {"t": True})) == ["t: cassette 1, request true"]


def test_without_keys_removes_dotted_paths_with_wildcards_on_both_kinds_of_container():
    from testopeninference.recorder.matchers import without_keys

    value = {"stream": False, "tools": [{"strict": False, "name": "a"}, {"name": "b"}], "meta": {"x": 1, "y": 2}}
    ignored = [("stream",), ("tools", "*", "strict"), ("meta", "*")]
    assert without_keys(value, ignored) == {"tools": [{"name": "a"}, {"name": "b"}], "meta": {}}
    assert without_keys(value, [("tools", "1", "name")])["tools"] == [{"strict": False, "name": "a"}, {}]


def test_matchers_are_per_instance_and_say_which_body_keys_differ():
    from testopeninference.recorder.matchers import RequestMatcher

    changed = {**RECORDED.json(), "stream": False, "model": "other"}
    result = RequestMatcher().compare(RECORDED, incoming(changed))
    assert result.body_keys == ("model", "stream")
    assert not RequestMatcher(ignore_body_keys=["stream", "model"]).compare(RECORDED, incoming(changed))
    assert RequestMatcher().compare(RECORDED, incoming(changed))  # the other instance is unchanged

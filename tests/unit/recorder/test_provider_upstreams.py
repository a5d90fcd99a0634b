"""Each provider's live request: URL, the key's header, what of the client's headers goes along."""

from __future__ import annotations

import pytest

from testopeninference.errors import RecordingError
from testopeninference.recorder.config import Upstream
from testopeninference.recorder.matchers import IncomingRequest
from testopeninference.recorder.provider_upstreams import provider_upstream

UPSTREAM = Upstream(openai_api_key="sk-o", anthropic_api_key="sk-ant-a", cohere_api_key="co-c",
                    anthropic_base_url="http://127.0.0.1:9/", cohere_base_url="http://127.0.0.1:8")
CLIENT_HEADERS = {"content-type": "application/json", "x-api-key": "unused", "authorization": "Bearer unused",
                  "cookie": "session=browser", "x-cassette-name": "x"}


@pytest.mark.parametrize(("path", "url", "auth"), [
    ("/v1/messages", "http://127.0.0.1:9/v1/messages", ("x-api-key", "sk-ant-a")),
    ("/v1/messages/count_tokens", "http://127.0.0.1:9/v1/messages/count_tokens", ("x-api-key", "sk-ant-a")),
    ("/v2/rerank", "http://127.0.0.1:8/v2/rerank", ("authorization", "Bearer co-c")),
    ("/v1/chat/completions", "https://api.openai.com/v1/chat/completions", ("authorization", "Bearer sk-o")),
    ("/v1/unknown/path", "https://api.openai.com/v1/unknown/path", ("authorization", "Bearer sk-o")),
])
def test_the_path_chooses_the_provider_its_url_and_key_header(path: str, url: str, auth: tuple[str, str]):
    incoming = IncomingRequest("POST", path, CLIENT_HEADERS, b"{}")
    outgoing = provider_upstream(path).request(UPSTREAM, incoming, "x")
    assert str(outgoing.url) == url and outgoing.headers[auth[0]] == auth[1]
    sent = {key.lower() for key in outgoing.headers if key.lower() not in ("content-length", "host")}
    expected = {"content-type", auth[0]} | ({"anthropic-version"} if "messages" in path else set())
    assert sent == expected  # the client's own key, cookie and cassette name stay behind


def test_anthropic_keeps_the_clients_api_version_and_beta():
    headers = {"anthropic-version": "2024-01-01", "anthropic-beta": "tools-1"}
    outgoing = provider_upstream("/v1/messages").request(UPSTREAM, IncomingRequest("POST", "/v1/messages", headers,
                                                                                   b"{}"), "x")
    assert (outgoing.headers["anthropic-version"], outgoing.headers["anthropic-beta"]) == ("2024-01-01", "tools-1")


@pytest.mark.parametrize(("path", "variable"), [("/v1/messages", "ANTHROPIC_API_KEY"), ("/v2/rerank", "CO_API_KEY"),
                                                ("/v1/embeddings", "OPENAI_API_KEY")])
def test_a_missing_key_is_a_recording_error_naming_its_variable(path: str, variable: str):
    with pytest.raises(RecordingError, match=f"cassette 'x' is missing; set {variable} to record it"):
        provider_upstream(path).request(Upstream(), IncomingRequest("POST", path, {}, b"{}"), "x")

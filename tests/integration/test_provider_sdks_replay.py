"""Every new provider's cassette replays through the fake server to its official SDK: no proxy involved.

Anthropic's SDK reads each SSE event (``event:`` lines, ``message_start`` ... ``message_stop``) and each
``{"type": "error", ...}`` body, Cohere's reads its rerank results, and OpenAI's speech call gets the
audio bytes exactly (the cassette holds them as base64).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import anthropic
import cohere
import openai
import pytest

from testopeninference.recorder.cassette import Cassette, CassetteLibrary
from testopeninference.recorder.fake_openai import CASSETTE_HEADER, CassetteReplayer, FakeOpenAIServer
from tests.helpers import CASSETTES

LIBRARY = CassetteLibrary(CASSETTES)
ANTHROPIC = [name for name in LIBRARY.names() if name.startswith("anthropic-messages-")]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(CassetteReplayer(LIBRARY)) as server:
        yield server


def _headers(name: str) -> dict[str, str]:
    return {CASSETTE_HEADER: name}


def _recorded(cassette: Cassette) -> Any:
    return json.loads(cassette.interactions[0].response.body)


def _anthropic(fake: FakeOpenAIServer, name: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.base_url, api_key="placeholder", max_retries=0, default_headers=_headers(name))


@pytest.mark.parametrize("name", [n for n in ANTHROPIC if LIBRARY.load(n).interactions[0].response.code == 200])
def test_anthropic_messages_replay_to_the_sdk(fake: FakeOpenAIServer, name: str) -> None:
    cassette = LIBRARY.load(name)
    body = cassette.request.json()
    assert isinstance(body, dict)
    client = _anthropic(fake, name)
    if body.get("stream"):
        events = list(client.messages.create(**body))
        kinds = [event.type for event in events]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "content_block_delta" in kinds
        assert not fake.replayer.errors()
        return
    message = client.messages.create(**body)
    assert message.model_dump(mode="json", exclude_unset=True) == _recorded(cassette)


@pytest.mark.parametrize(("name", "error"), [
    ("anthropic-messages-bad-request", anthropic.BadRequestError),
    ("anthropic-messages-unknown-model", anthropic.NotFoundError),
    ("anthropic-messages-overloaded", anthropic.InternalServerError),
])
def test_anthropic_errors_replay_as_the_sdk_error(fake: FakeOpenAIServer, name: str, error: type[Exception]) -> None:
    cassette = LIBRARY.load(name)
    with pytest.raises(error) as raised:
        _anthropic(fake, name).messages.create(**cassette.request.json())  # type: ignore[arg-type]
    assert isinstance(raised.value, anthropic.APIStatusError)
    assert raised.value.status_code == cassette.interactions[0].response.code
    assert raised.value.body == _recorded(cassette)


def test_anthropic_count_tokens_replays(fake: FakeOpenAIServer) -> None:
    cassette = LIBRARY.load("anthropic-count-tokens-basic")
    counted = _anthropic(fake, cassette.name).messages.count_tokens(**cassette.request.json())  # type: ignore[arg-type]
    assert counted.input_tokens == _recorded(cassette)["input_tokens"]


@pytest.mark.parametrize("name", ["cohere-rerank-basic", "cohere-rerank-top-n"])
def test_cohere_rerank_replays_to_the_sdk(fake: FakeOpenAIServer, name: str) -> None:
    cassette = LIBRARY.load(name)
    client = cohere.ClientV2(base_url=fake.base_url, api_key="placeholder")
    reply = client.rerank(**cassette.request.json(), request_options={"additional_headers": _headers(name)})  # type: ignore[arg-type]
    assert [(r.index, r.relevance_score) for r in reply.results] == [
        (r["index"], r["relevance_score"]) for r in _recorded(cassette)["results"]]


def test_cohere_bad_request_replays_as_the_sdk_error(fake: FakeOpenAIServer) -> None:
    cassette = LIBRARY.load("cohere-rerank-bad-request")
    client = cohere.ClientV2(base_url=fake.base_url, api_key="placeholder")
    with pytest.raises(cohere.errors.BadRequestError) as raised:
        client.rerank(**cassette.request.json(), request_options={"additional_headers": _headers(cassette.name)})  # type: ignore[arg-type]
    assert raised.value.status_code == 400


def _openai(fake: FakeOpenAIServer, name: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fake.base_url}/v1", api_key="placeholder", max_retries=0, default_headers=_headers(name))


def test_speech_replays_the_exact_audio_bytes(fake: FakeOpenAIServer) -> None:
    cassette = LIBRARY.load("audio-speech-basic")
    expected = cassette.interactions[0].response.body_bytes()
    assert expected.startswith(b"RIFF") and b"WAVE" in expected[:12]
    with _openai(fake, cassette.name).audio.speech.with_streaming_response.create(**cassette.request.json()) as reply:  # type: ignore[arg-type]
        assert reply.headers["content-type"] == "audio/wav"
        assert reply.read() == expected


def test_streamed_speech_replays_event_by_event(fake: FakeOpenAIServer) -> None:
    cassette = LIBRARY.load("audio-speech-streaming")
    with _openai(fake, cassette.name).audio.speech.with_streaming_response.create(**cassette.request.json()) as reply:  # type: ignore[arg-type]
        events = [json.loads(line[len("data: "):]) for line in reply.iter_lines() if line.startswith("data: ")]
    assert {event["type"] for event in events[:-1]} == {"speech.audio.delta"}
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["total_tokens"] == 41

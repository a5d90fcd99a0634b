"""The shipped cassette library: complete, described, replayable, and free of secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference import Endpoint, cassette_catalogue
from tests.helpers import CASSETTES, SPANS

CATALOGUE = """
chat-basic chat-json-mode chat-multimodal chat-multiturn chat-no-messages chat-parallel-tools chat-streaming
chat-tools chat-unknown-model chat-bad-request chat-reasoning chat-image-to-text chat-text-to-image-tool
chat-audio-to-text chat-text-to-audio chat-detailed-usage chat-streaming-detailed-usage chat-web-search
chat-streaming-web-search chat-openai-agents-python
completion-basic completion-token completion-streaming completion-streaming-usage completion-text-batch
completion-token-batch completion-suffix completion-bad-request completion-unknown-model
embeddings-basic embeddings-base64 embeddings-tokens embeddings-large-text embeddings-unknown-model
embeddings-dimensions embeddings-mixed-batch embeddings-max-tokens embeddings-whitespace embeddings-bad-request
image-generation-basic audio-transcription-basic audio-translation-basic azure-chat-basic
responses-basic responses-streaming responses-tools audio-speech-basic audio-speech-streaming
anthropic-messages-basic anthropic-messages-streaming anthropic-messages-system anthropic-messages-multiturn
anthropic-messages-tools anthropic-messages-tool-result anthropic-messages-image anthropic-messages-thinking
anthropic-messages-streaming-thinking anthropic-messages-stop-sequence anthropic-messages-bad-request
anthropic-messages-unknown-model anthropic-messages-overloaded anthropic-count-tokens-basic
cohere-rerank-basic cohere-rerank-top-n cohere-rerank-bad-request
""".split()

SECRETS = {
    "API key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),  # OpenAI's, and Anthropic's sk-ant-...
    "bearer token": re.compile(r"Bearer\s+[A-Za-z0-9._~+/-]{16,}"),
    "organization id": re.compile(r"\borg-(?!REDACTED)[A-Za-z0-9]{16,}"),
    "project id": re.compile(r"\bproj_(?!REDACTED)[A-Za-z0-9]{16,}"),
    "user id": re.compile(r"\buser-(?!REDACTED)[A-Za-z0-9]{16,}"),
    "URL signature": re.compile(r"[?&]sig=(?!REDACTED)[^&\"\s]+"),
    "secret header": re.compile(
        r"^\s*\"?(authorization|api-key|x-api-key|anthropic-organization-id|cookie|set-cookie|openai-organization"
        r"|openai-project)\"?\s*:", re.I | re.M
    ),
}


def test_every_catalogued_cassette_is_shipped():
    assert sorted(CATALOGUE) == CassetteLibrary(CASSETTES).names()


def test_every_cassette_has_a_one_line_description():
    entries = cassette_catalogue()
    assert [entry.name for entry in entries] == sorted(CATALOGUE)
    for entry in entries:
        assert entry.description and "\n" not in entry.description, entry.name
        assert isinstance(entry.endpoint, Endpoint)


@pytest.mark.parametrize("path", sorted(CASSETTES.rglob("*.yaml")) + sorted(SPANS.glob("*.json")), ids=lambda p: p.name)
def test_no_secret_in_cassettes_or_goldens(path: Path):
    text = path.read_text(encoding="utf-8")
    found = [f"{kind}: {match.group(0)[:40]}" for kind, pattern in SECRETS.items() for match in pattern.finditer(text)]
    assert not found, f"{path} holds what looks like a secret: {found}. Scrub it (recorder/scrub.py)."


def test_the_secret_scan_finds_planted_secrets():
    planted = "Authorization: x\nsk-" + "a" * 30 + " org-" + "B" * 20 + " ?sig=abc&"
    kinds = {kind for kind, pattern in SECRETS.items() if pattern.search(planted)}
    assert kinds == {"API key", "organization id", "URL signature", "secret header"}


def test_the_secret_scan_finds_anthropic_and_cohere_keys():
    planted = "            X-Api-Key:\n                - sk-ant-api03-" + "c" * 40 + "\nAuthorization: Bearer " + "k" * 40
    kinds = {kind for kind, pattern in SECRETS.items() if pattern.search(planted)}
    assert kinds == {"API key", "bearer token", "secret header"}

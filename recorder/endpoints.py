"""API endpoints of every provider (OpenAI, Anthropic, Cohere), told apart by a cassette's request path."""

from __future__ import annotations

import enum
from urllib.parse import urlsplit

from testopeninference.recorder.cassette import Cassette
from testopeninference.errors import InvalidCassetteError


class Endpoint(str, enum.Enum):
    """An API endpoint, with its provider, path suffix, OpenInference span name and description."""

    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDINGS = "embeddings"
    IMAGE = "image"
    TRANSCRIPTION = "transcription"
    TRANSLATION = "translation"
    RESPONSES = "responses"
    SPEECH = "speech"
    MESSAGES = "messages"
    COUNT_TOKENS = "count-tokens"
    RERANK = "rerank"

    @property
    def path_suffix(self) -> str:
        return _PATHS[self]

    @property
    def provider(self) -> str:
        """Whose API it is: ``openai``, ``anthropic`` or ``cohere`` (the proxy serves each with its own SDK)."""
        return _PROVIDERS.get(self, "openai")

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def span_name(self) -> str:
        return _SPAN_NAMES[self]


_PATHS = {
    Endpoint.CHAT: "/chat/completions",
    Endpoint.COMPLETION: "/completions",
    Endpoint.EMBEDDINGS: "/embeddings",
    Endpoint.IMAGE: "/images/generations",
    Endpoint.TRANSCRIPTION: "/audio/transcriptions",
    Endpoint.TRANSLATION: "/audio/translations",
    Endpoint.RESPONSES: "/responses",
    Endpoint.SPEECH: "/audio/speech",
    Endpoint.MESSAGES: "/messages",
    Endpoint.COUNT_TOKENS: "/messages/count_tokens",
    Endpoint.RERANK: "/rerank",
}

_PROVIDERS = {Endpoint.MESSAGES: "anthropic", Endpoint.COUNT_TOKENS: "anthropic", Endpoint.RERANK: "cohere"}

_DESCRIPTIONS = {
    Endpoint.CHAT: "OpenAI chat completions (POST /v1/chat/completions)",
    Endpoint.COMPLETION: "OpenAI legacy completions (POST /v1/completions)",
    Endpoint.EMBEDDINGS: "OpenAI embeddings (POST /v1/embeddings)",
    Endpoint.IMAGE: "OpenAI image generation (POST /v1/images/generations)",
    Endpoint.TRANSCRIPTION: "OpenAI audio transcription (POST /v1/audio/transcriptions)",
    Endpoint.TRANSLATION: "OpenAI audio translation (POST /v1/audio/translations)",
    Endpoint.RESPONSES: "OpenAI Responses API (POST /v1/responses)",
    Endpoint.SPEECH: "OpenAI text-to-speech (POST /v1/audio/speech), binary audio or SSE",
    Endpoint.MESSAGES: "Anthropic Messages API (POST /v1/messages)",
    Endpoint.COUNT_TOKENS: "Anthropic token counting (POST /v1/messages/count_tokens)",
    Endpoint.RERANK: "Cohere Rerank v2 (POST /v2/rerank)",
}

_SPAN_NAMES = {
    Endpoint.CHAT: "ChatCompletion",
    Endpoint.COMPLETION: "Completion",
    Endpoint.EMBEDDINGS: "CreateEmbeddings",
    Endpoint.IMAGE: "ImagesResponse",
    Endpoint.TRANSCRIPTION: "Transcription",
    Endpoint.TRANSLATION: "Translation",
    Endpoint.RESPONSES: "Response",
    Endpoint.SPEECH: "HttpxBinaryResponseContent",
    Endpoint.MESSAGES: "messages.create",
    Endpoint.COUNT_TOKENS: "messages.count_tokens",
    Endpoint.RERANK: "AsyncClientV2.rerank",
}


def endpoint_of(cassette: Cassette) -> Endpoint:
    """The endpoint of a cassette's request (chat is tested before its suffix ``/completions``, token counting
    before ``/messages``: no suffix ends another that is tested earlier)."""
    return endpoint_of_path(cassette.request.path, cassette.path)


def endpoint_of_path(path: str, where: object) -> Endpoint:
    """The endpoint a request path names; ``where`` (a cassette's file or name) goes into the error."""
    path = urlsplit(path).path.rstrip("/")
    for endpoint in Endpoint:
        if path.endswith(endpoint.path_suffix):
            return endpoint
    raise InvalidCassetteError(f"{where}: no known endpoint (OpenAI, Anthropic or Cohere) for path {path!r}.")

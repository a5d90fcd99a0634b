"""OpenAI API endpoints, told apart by a cassette's request path."""

from __future__ import annotations

import enum

from testopeninference.recorder.cassette import Cassette
from testopeninference.errors import InvalidCassetteError


class Endpoint(str, enum.Enum):
    """An OpenAI API endpoint, with its path suffix and OpenInference span name."""

    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDINGS = "embeddings"
    IMAGE = "image"
    TRANSCRIPTION = "transcription"
    TRANSLATION = "translation"
    RESPONSES = "responses"

    @property
    def path_suffix(self) -> str:
        return _PATHS[self]

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
}

_SPAN_NAMES = {
    Endpoint.CHAT: "ChatCompletion",
    Endpoint.COMPLETION: "Completion",
    Endpoint.EMBEDDINGS: "CreateEmbeddings",
    Endpoint.IMAGE: "ImagesResponse",
    Endpoint.TRANSCRIPTION: "Transcription",
    Endpoint.TRANSLATION: "Translation",
    Endpoint.RESPONSES: "Response",
}


def endpoint_of(cassette: Cassette) -> Endpoint:
    """The endpoint of a cassette's request (chat is tested before its suffix ``/completions``)."""
    path = cassette.request.path.rstrip("/")
    for endpoint in Endpoint:
        if path.endswith(endpoint.path_suffix):
            return endpoint
    raise InvalidCassetteError(f"{cassette.path}: no known OpenAI endpoint for path {path!r}.")

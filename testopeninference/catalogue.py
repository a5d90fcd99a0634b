"""Which endpoint each cassette exercises, and the span name its golden must have.

The endpoint is read from the cassette's request path, so a user's own
cassettes are catalogued the same way as the shipped ones.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

from recorder.cassette import Cassette, CassetteLibrary
from recorder.config import Settings
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


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    name: str
    endpoint: Endpoint
    description: str


def cassette_catalogue(cassettes_dir: Path | None = None) -> list[CatalogueEntry]:
    """Every cassette with its endpoint and one-line description, sorted by name."""
    library = CassetteLibrary(cassettes_dir or Settings.from_env().cassettes_dir)
    entries = []
    for name in library.names():
        cassette = library.load(name)
        entries.append(CatalogueEntry(name, endpoint_of(cassette), cassette.description))
    return entries


def cassettes_by_endpoint(cassettes_dir: Path | None = None) -> dict[Endpoint, list[str]]:
    """Every cassette name, grouped by endpoint (each list sorted)."""
    grouped: dict[Endpoint, list[str]] = {endpoint: [] for endpoint in Endpoint}
    for entry in cassette_catalogue(cassettes_dir):
        grouped[entry.endpoint].append(entry.name)
    return grouped


def list_cassettes(endpoint: Endpoint | str | None = None, cassettes_dir: Path | None = None) -> list[str]:
    """Cassette names, all of them or those of one endpoint."""
    grouped = cassettes_by_endpoint(cassettes_dir)
    if endpoint is None:
        return sorted(name for names in grouped.values() for name in names)
    return grouped[Endpoint(endpoint)]

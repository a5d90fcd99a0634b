"""The cassette catalogue: each cassette with its endpoint and one-line description.

The endpoint is read from the cassette's request path (``recorder.endpoints``),
so a user's own cassettes are catalogued the same way as the shipped ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.config import Settings
from testopeninference.recorder.layers import cassette_library
from testopeninference.recorder.endpoints import Endpoint, endpoint_of

__all__ = ["CatalogueEntry", "Endpoint", "cassette_catalogue", "cassettes_by_endpoint", "endpoint_of", "list_cassettes"]


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    name: str
    endpoint: Endpoint
    description: str


def cassette_catalogue(cassettes_dir: Path | None = None) -> list[CatalogueEntry]:
    """Every cassette with its endpoint and one-line description, sorted by name."""
    library = _library(cassettes_dir)
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
    """Cassette names, all of them or those of one endpoint.

    All of them are the file names, none parsed: a broken cassette is listed too, so that a test
    parametrized over them fails for that cassette only (with its error), not at collection."""
    if endpoint is None:
        return _library(cassettes_dir).names()
    return cassettes_by_endpoint(cassettes_dir)[Endpoint(endpoint)]


def _library(cassettes_dir: Path | None) -> CassetteLibrary:
    return CassetteLibrary(cassettes_dir) if cassettes_dir else cassette_library(Settings.from_env())

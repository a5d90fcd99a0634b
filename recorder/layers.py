"""Where a golden is read and written: the user's own spans directory, then the packaged goldens.

A gateway repository keeps its own cassettes and goldens beside the packaged
library (``Settings.cassette_dirs``). A name in the user's directories wins. A
packaged cassette's golden is read from the package unless the user recorded
one of their own; a user cassette's golden only from the user's directory.
Recording always writes to the user's ``spans_dir``, so packaged goldens are
never written to.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from testopeninference.recorder import resources
from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.config import Settings
from testopeninference.recorder.conventions import Convention


@dataclasses.dataclass(frozen=True)
class GoldenLocation:
    path: Path  # the span file; may not exist yet
    spans_dir: Path  # the directory it belongs to (its manifest.yaml is there)


def cassette_library(settings: Settings) -> CassetteLibrary:
    """The user's cassettes, then the packaged library (unless ``settings.library`` is off)."""
    return CassetteLibrary(*settings.cassette_dirs)


def golden_location(settings: Settings, convention: Convention, cassette_path: Path) -> GoldenLocation:
    """Where the golden of the cassette at ``cassette_path`` is read from (the user's, when none exists)."""
    own = GoldenLocation(convention.span_path(settings.spans_dir, _stem(cassette_path)), settings.spans_dir)
    if own.path.exists() or not settings.library or not resources.inside(cassette_path, resources.CASSETTES):
        return own
    shipped = GoldenLocation(convention.span_path(resources.SPANS, _stem(cassette_path)), resources.SPANS)
    return shipped if shipped.path.exists() else own


def source_label(path: Path) -> str:
    """``package`` for a cassette or golden of the packaged library, ``project`` for the user's own."""
    return "package" if resources.inside(path, resources.CASSETTES) or resources.inside(path, resources.SPANS) else "project"


def _stem(cassette_path: Path) -> str:
    return cassette_path.name[: -len(".yaml")] if cassette_path.name.endswith(".yaml") else cassette_path.stem

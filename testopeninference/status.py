"""Golden status per cassette: present, missing or stale (see ``recorder.manifest``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.config import Settings
from testopeninference.recorder.conventions import get_convention
from testopeninference.recorder.layers import cassette_library, golden_location, source_label
from testopeninference.recorder.endpoints import endpoint_of
from testopeninference.recorder.manifest import Manifest, Provenance, staleness
from testopeninference.recorder.versions import read_pins
from testopeninference.errors import InvalidCassetteError

BROKEN = "broken"
"""The state of a cassette that cannot be read (its reason says why); only its own row shows it."""


@dataclasses.dataclass(frozen=True)
class GoldenStatus:
    cassette: str
    path: Path
    state: str  # "present", "missing", "stale", "broken" (the cassette cannot be read) or "-" (no golden claimed)
    reason: str = ""
    source: str = "project"  # "package" (the packaged library) or "project" (the user's own)


def golden_statuses(settings: Settings, names: list[str] | None = None) -> list[GoldenStatus]:
    """The status of each named cassette's golden (all cassettes by default).

    A cassette that cannot be read is ``broken``, its reason the error's message: one bad file spoils
    only its own row (an unknown name still raises)."""
    library = cassette_library(settings)
    convention = get_convention(settings.convention)
    manifests: dict[Path, tuple[Manifest, dict[str, Provenance]]] = {}  # one per spans directory: the user's, the packaged one
    pins = read_pins(settings.requirements_file)
    statuses = []
    for name in names if names is not None else library.names():
        try:
            cassette_path = library.path(name)
            endpoint = endpoint_of(library.load(name))
        except InvalidCassetteError as error:
            statuses.append(_broken(library, convention.span_path(settings.spans_dir, name), name, error))
            continue
        location = golden_location(settings, convention, cassette_path)
        path, source = location.path, source_label(location.path)
        why = convention.why_not_covered(name, endpoint)
        if why:
            statuses.append(GoldenStatus(name, path, "-", why, source))
            continue
        if not path.exists():
            statuses.append(GoldenStatus(name, path, "missing", "", source))
            continue
        if location.spans_dir not in manifests:
            manifest = Manifest(location.spans_dir)
            manifests[location.spans_dir] = (manifest, manifest.read())
        manifest, entries = manifests[location.spans_dir]
        why = staleness(entries.get(manifest.key(path)), cassette_path, pins)
        statuses.append(GoldenStatus(name, path, "stale" if why else "present", why or "", source))
    return statuses


def _broken(library: CassetteLibrary, golden: Path, name: str, error: InvalidCassetteError) -> GoldenStatus:
    """The row of a cassette that cannot be read: its error on one line, from where its file is."""
    files = (folder / f"{name}.yaml" for folder in library.directories)
    cassette_path = next((path for path in files if path.exists()), library.directory)
    return GoldenStatus(name, golden, BROKEN, " ".join(str(error).split()), source_label(cassette_path))


def orphaned_goldens(settings: Settings) -> list[Path]:
    """Golden files (span, and log records for event conventions) whose cassette no longer exists.

    A file is kept when it is exactly the span or log-records file the convention names for an existing
    cassette, so names with dots (``chat.v2`` -> ``chat.v2.json``) are never mistaken; anything else
    ending in ``.json`` in the convention's folder is an orphan. ``manifest.yaml``, subfolders (other
    conventions) and hidden files (temporaries, locks) are never touched.
    """
    convention = get_convention(settings.convention)
    folder = convention.span_path(settings.spans_dir, "x").parent
    if not folder.is_dir():
        return []
    wanted = set()
    for name in cassette_library(settings).names():
        wanted.add(convention.span_path(settings.spans_dir, name).name)
        if convention.emits_events:
            wanted.add(convention.logs_path(settings.spans_dir, name).name)
    return sorted(
        path for path in folder.iterdir()
        if path.suffix == ".json" and not path.name.startswith(".") and path.is_file() and path.name not in wanted
    )

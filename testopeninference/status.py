"""Golden status per cassette: present, missing or stale (see ``recorder.manifest``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.config import Settings
from testopeninference.recorder.conventions import get_convention
from testopeninference.recorder.endpoints import endpoint_of
from testopeninference.recorder.manifest import Manifest, staleness
from testopeninference.recorder.versions import read_pins


@dataclasses.dataclass(frozen=True)
class GoldenStatus:
    cassette: str
    path: Path
    state: str  # "present", "missing", "stale", or "-" (the convention claims no golden)
    reason: str = ""


def golden_statuses(settings: Settings, names: list[str] | None = None) -> list[GoldenStatus]:
    """The status of each named cassette's golden (all cassettes by default)."""
    library = CassetteLibrary(settings.cassettes_dir)
    convention = get_convention(settings.convention)
    manifest = Manifest(settings.spans_dir)
    entries = manifest.read()
    pins = read_pins(settings.requirements_file)
    statuses = []
    for name in names if names is not None else library.names():
        path = convention.span_path(settings.spans_dir, name)
        why = convention.why_not_covered(name, endpoint_of(library.load(name)))
        if why:
            statuses.append(GoldenStatus(name, path, "-", why))
            continue
        if not path.exists():
            statuses.append(GoldenStatus(name, path, "missing"))
            continue
        why = staleness(entries.get(manifest.key(path)), library.path(name), pins)
        statuses.append(GoldenStatus(name, path, "stale" if why else "present", why or ""))
    return statuses


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
    for name in CassetteLibrary(settings.cassettes_dir).names():
        wanted.add(convention.span_path(settings.spans_dir, name).name)
        if convention.emits_events:
            wanted.add(convention.logs_path(settings.spans_dir, name).name)
    return sorted(
        path for path in folder.iterdir()
        if path.suffix == ".json" and not path.name.startswith(".") and path.is_file() and path.name not in wanted
    )

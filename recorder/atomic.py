"""Atomic file writes: readers see the old file or the new one, never half of either.

``write_atomic_group`` extends this to files that belong together (a golden,
its log records and the manifest entry that gives it provenance): every new
file is written to a temporary first, and only when all are complete are they
renamed into place; on any failure the temporaries go and replaced files are
put back, so the group is all new or all old. A file of the group may be ``prepare``d
beforehand (written and synced outside a lock the group's commit needs): then it is only renamed.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Iterable, Mapping
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A file's new content, complete and synced in its temporary: ``write_atomic_group`` only renames it."""

    temporary: str


def prepare(path: Path, data: str | bytes) -> Prepared:
    """Write ``data`` to a temporary beside ``path`` now; ``discard`` it if the group is never written."""
    return Prepared(_write_temporary(Path(path), data))


def discard(files: Iterable[str | bytes | Prepared | None]) -> None:
    """Remove the temporaries of prepared files that were not written (no effect on those that were)."""
    for data in files:
        if isinstance(data, Prepared):
            Path(data.temporary).unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temporary file in the same directory, then rename it over ``path``."""
    write_atomic_group({Path(path): data})


def write_atomic_group(files: Mapping[Path, str | bytes | Prepared]) -> None:
    """Write every file or none; they are renamed into place in the given order (put the file readers test last)."""
    temporaries: dict[Path, str] = {}
    try:
        for path, data in files.items():
            temporaries[Path(path)] = data.temporary if isinstance(data, Prepared) else _write_temporary(Path(path), data)
    except BaseException:
        for temporary in temporaries.values():
            Path(temporary).unlink(missing_ok=True)
        raise
    _rename_all(temporaries)


def _write_temporary(path: Path, data: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o666 & ~_umask() & ~0o002)  # as open() would (not 0600), never world-writable
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return handle.name


def _rename_all(temporaries: dict[Path, str]) -> None:
    """Rename each temporary over its target; if one fails, put the earlier targets back as they were."""
    previous: dict[Path, bytes | None] = {}
    try:
        for path, temporary in temporaries.items():
            previous[path] = path.read_bytes() if path.is_file() else None
            os.replace(temporary, path)
    except BaseException:
        for temporary in temporaries.values():
            Path(temporary).unlink(missing_ok=True)
        for path, old in previous.items():
            if old is None:
                path.unlink(missing_ok=True)
            else:
                _restore(path, old)
        raise


def _restore(path: Path, data: bytes) -> None:
    """Put a replaced file back, once: the first error is the one to report."""
    try:
        temporary = _write_temporary(path, data)
    except OSError:
        return
    try:
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

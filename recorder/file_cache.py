"""Parsed files kept for the life of the process, each only while its file is unchanged.

A gateway suite calls ``get_span`` thousands of times; parsing its cassette and
golden each time costs milliseconds, a ``stat`` microseconds. A parse is kept
under the file's version (device, inode, size, mtime in ns): an atomic replace
makes a new inode, an edit a new size or mtime, and a deleted file fails its
``stat``, so the next read sees any change at once. File systems stamp mtimes
by a clock tick, not a nanosecond, so a same-size edit within one tick would
keep the version: a file changed in the last ``RECENT_SECONDS`` is parsed
again on every read until it is older (git's "racily clean" rule). Parse
errors are never kept. Values are shared: callers hand out copies of
anything a caller could change.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

RECENT_SECONDS = 2.0
"""Files modified this recently are not cached (mtime ticks are coarse; FAT's is two seconds)."""

MAX_ENTRIES = 4096
"""Past this many files the cache starts again, so a long run over temporary files stays bounded."""

_entries: dict[tuple[Callable[[Path], object], str], tuple[tuple[int, int, int, int], object]] = {}


def cached(parse: Callable[[Path], T], path: Path) -> T:
    """``parse(path)``, reused while the file stays the same; ``parse`` reports missing or bad files itself."""
    key = (parse, os.fspath(path))
    try:
        stat = os.stat(path)
    except OSError:
        _entries.pop(key, None)
        return parse(Path(path))
    version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    entry = _entries.get(key)
    if entry is not None and entry[0] == version:
        return entry[1]  # type: ignore[return-value]
    value = parse(Path(path))
    if time.time_ns() - stat.st_mtime_ns > RECENT_SECONDS * 1e9:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[key] = (version, value)
    else:
        _entries.pop(key, None)
    return value


def clear() -> None:
    """Forget every parse (the next reads are cold; for benchmarks and tests)."""
    _entries.clear()

"""Locks shared by every process that records into one spans directory.

Two pytest-xdist workers asking for the same missing golden must record it
once: each takes that golden's lock (``golden_lock``), checks again whether
the golden exists, and only then records. Workers recording different goldens
do not wait for each other. The manifest, shared by all goldens, is read,
changed and written (with the golden) under the directory's lock
(``directory_lock``), held only for that commit.

Lock files are opened with ``O_NOFOLLOW``: a symbolic link planted in their
place is refused, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import Iterator

from testopeninference.errors import RecordingError

LOCKS_DIR = ".testopeninference.locks"
"""Every lock file lives here, beside a ``.gitignore`` of ``*``: a repository that commits its spans
directory never commits a lock."""
LOCK_NAME = f"{LOCKS_DIR}/directory.lock"


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``directory`` (created if missing)."""
    with _locked(Path(directory) / LOCK_NAME):
        yield


@contextlib.contextmanager
def golden_lock(spans_dir: Path, golden_id: str) -> Iterator[None]:
    """Hold an exclusive lock on one golden (``golden_id``: its convention and cassette, e.g. ``openinference.x``)."""
    with _locked(Path(spans_dir) / LOCKS_DIR / f"{golden_id}.lock"):
        yield


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)  # never world-writable, whatever the umask
    ignore = path.parent / ".gitignore"
    if not ignore.exists() and not ignore.is_symlink():
        ignore.write_text("# lock files of testopeninference: never committed\n*\n", encoding="utf-8")
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)  # never world-writable
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RecordingError(
                f"lock file {path} is a symbolic link; a lock file never is one, so it is not followed. Remove it."
            ) from None
        raise
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock

"""Received spans as files, for ``serve --save-spans DIR``: each one a protojson ``Span`` that
``testopeninference diff <cassette> DIR/<file>`` reads, so a gateway's span is compared from the shell.

Spans are written as received (ids and times kept: the comparison ignores them) by the writer goldens use,
atomically, under ``<trace id>-<span name>.json``; a name already taken gets ``-2``, ``-3``, ... and an
existing file is never replaced.
"""

from __future__ import annotations

import re
from pathlib import Path

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.span_file import write_span

MAX_NAME_CHARS = 100  # of the span-name part: file names stay well under every file system's limit
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class SpanSaver:
    """Writes each span given to ``save`` into ``directory`` (made if missing) under a name of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._taken: set[str] = set()

    def save(self, span: Span) -> Path:
        stem = f"{span.trace_id.hex() or 'no-trace-id'}-{file_name_part(span.name)}"
        name, copy = f"{stem}.json", 1
        while name in self._taken or (self.directory / name).exists():
            copy += 1
            name = f"{stem}-{copy}.json"
        self._taken.add(name)
        path = self.directory / name
        write_span(path, span)
        return path


def file_name_part(text: str) -> str:
    """``text`` with anything but letters, digits, ``.``, ``_`` and ``-`` as ``_``; never empty, hidden or long."""
    return _UNSAFE.sub("_", text).lstrip(".")[:MAX_NAME_CHARS] or "span"

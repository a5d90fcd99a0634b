"""The gateway's own output, kept as numbered lines: what it printed since a mark, for a cassette's detail.

A gateway that answers 500 usually says why on its own output (a traceback, a
missing module), not in its reply; ``conform`` marks the output before it
sends a cassette and quotes what came after (``since``), as it quotes the last
lines when the gateway dies or never gets ready (``last``).
"""

from __future__ import annotations

import collections
import threading
import time

LINES_KEPT = 200
TAIL_LINES = 40  # lines quoted in a cassette's detail: a Python traceback's end fits
SETTLE_SECONDS = 0.15  # a gateway logs its error while or after it answers: wait this long without a new line
SETTLE_LIMIT = 1.0  # ... but no longer than this


class GatewayOutput:
    """The last ``LINES_KEPT`` lines, each numbered from the first line printed (thread-safe: a reader thread
    appends while the run reads)."""

    def __init__(self, kept: int = LINES_KEPT) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=kept)
        self._count = 0  # every line so far, kept or not
        self._lock = threading.Lock()

    def append(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)
            self._count += 1

    def mark(self) -> int:
        """A mark for ``since``: how many lines were printed so far."""
        with self._lock:
            return self._count

    def last(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def since(self, mark: int, limit: int = TAIL_LINES) -> list[str]:
        """The lines printed after ``mark`` (the last ``limit`` of those still kept)."""
        with self._lock:
            new = min(self._count - mark, len(self._lines), limit)
            return list(self._lines)[len(self._lines) - new:] if new > 0 else []

    def settled_since(self, mark: int, limit: int = TAIL_LINES) -> list[str]:
        """``since``, once the gateway stopped printing for ``SETTLE_SECONDS`` (bounded by ``SETTLE_LIMIT``):
        its error log may follow its reply."""
        deadline = time.monotonic() + SETTLE_LIMIT
        seen, quiet_from = self.mark(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_from < SETTLE_SECONDS:
            time.sleep(0.02)
            if self.mark() != seen:
                seen, quiet_from = self.mark(), time.monotonic()
        return self.since(mark, limit)


def quoted(lines: list[str], heading: str) -> str:
    """Lines quoted under a heading: ``Its output (last 3 lines):`` then ``  | line`` each."""
    return f"{heading} (last {len(lines)} lines):\n" + "\n".join(f"  | {line}" for line in lines)

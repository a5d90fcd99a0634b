"""What recording one golden gave: a small value shared by the recorder, its service and its clients."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class RecordResult:
    cassette: str
    path: Path
    recorded: bool  # False when the golden already existed
    seconds: float

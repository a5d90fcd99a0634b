"""Re-recording every convention's goldens gives the same bytes (spans and log records)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testopeninference.recorder.config import Settings
from testopeninference.recorder.conventions import CONVENTIONS
from testopeninference.recorder.session import SpanRecorder
from testopeninference.errors import NotCoveredError
from tests.helpers import CASSETTES, SPANS

GENAI = [name for name in CONVENTIONS if name != "openinference"]  # openinference: test_record_local.py


@pytest.mark.parametrize("convention", GENAI)
def test_rerecording_a_convention_gives_the_same_bytes(convention: str, tmp_path: Path):
    settings = Settings(cassettes_dir=CASSETTES, spans_dir=tmp_path, convention=convention)
    recorded = 0
    with SpanRecorder(settings) as recorder:
        for name in recorder.library.names():
            try:
                recorder.record(name)
            except NotCoveredError:
                continue
            recorded += 1
    subdir = CONVENTIONS[convention].spans_subdir
    ours = sorted(p.name for p in (tmp_path / subdir).glob("*.json"))
    assert ours == sorted(p.name for p in (SPANS / subdir).glob("*.json"))
    assert recorded == len([name for name in ours if not name.endswith(".logs.json")])
    for name in ours:
        assert (tmp_path / subdir / name).read_bytes() == (SPANS / subdir / name).read_bytes(), name

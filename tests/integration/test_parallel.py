"""The backfill under pytest-xdist: every golden written exactly once, and the same bytes as a serial run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import CASSETTES, SPANS

CHILD_CONFTEST = """
import os

import testopeninference.recorder.session

_write_atomic_group = testopeninference.recorder.session.write_atomic_group


def _logged_write_atomic_group(files):
    with open(os.environ["WRITE_LOG"], "a") as log:  # O_APPEND: one line per golden written, across processes
        log.write("".join(path.name + "\\n" for path in files if path.suffix == ".json"))
    _write_atomic_group(files)


testopeninference.recorder.session.write_atomic_group = _logged_write_atomic_group
"""

CHILD_TEST = """
import pytest

from testopeninference import get_span, list_cassettes


@pytest.mark.parametrize("cassette", list_cassettes() * 2)  # each golden asked for twice, by either worker
def test_backfill(cassette):
    assert get_span(cassette).name
"""


def test_backfill_with_two_workers_writes_each_golden_once(pytester: pytest.Pytester, tmp_path: Path, monkeypatch):
    spans = tmp_path / "spans"
    log = tmp_path / "writes.log"
    monkeypatch.setenv("TESTOPENINFERENCE_SPANS_DIR", str(spans))
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(CASSETTES))
    monkeypatch.setenv("RECORD_SPANS", "true")
    monkeypatch.setenv("WRITE_LOG", str(log))
    pytester.makeconftest(CHILD_CONFTEST)
    pytester.makepyfile(CHILD_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.stdout.fnmatch_lines(["*2 workers*"])
    names = sorted(path.stem for path in CASSETTES.glob("*.yaml"))
    result.assert_outcomes(passed=2 * len(names))
    writes = log.read_text().split()
    assert sorted(writes) == sorted(f"{name}.json" for name in names)  # each exactly once
    for name in names:
        assert (spans / f"{name}.json").read_bytes() == (SPANS / f"{name}.json").read_bytes(), name

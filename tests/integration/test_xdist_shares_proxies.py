"""pytest-xdist workers record through the run's one recording service: one proxy per convention, not per worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import CASSETTES, SPANS

CHILD_CONFTEST = """
import os

from testopeninference.recorder.backends.local import LocalBackend

_start = LocalBackend.start


def _logged_start(self, env):
    with open(os.environ["START_LOG"], "a") as log:  # O_APPEND: one line per proxy started, in any process
        log.write(f"{self.settings.convention} {os.getpid()}\\n")
    return _start(self, env)


LocalBackend.start = _logged_start
"""

CHILD_TEST = """
import pytest

from testopeninference import get_span

NAMES = ["chat-basic", "chat-streaming", "embeddings-basic", "embeddings-base64", "responses-basic", "chat-tools"]


@pytest.mark.parametrize("convention", ["openinference", "otel-genai"])
@pytest.mark.parametrize("cassette", NAMES)
def test_record(cassette, convention):
    assert get_span(cassette, convention=convention).name
"""


def test_workers_share_one_proxy_per_convention(pytester: pytest.Pytester, tmp_path: Path, monkeypatch):
    spans, log = tmp_path / "spans", tmp_path / "starts.log"
    monkeypatch.setenv("TESTOPENINFERENCE_SPANS_DIR", str(spans))
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(CASSETTES))
    monkeypatch.setenv("RECORD_SPANS", "all")
    monkeypatch.setenv("START_LOG", str(log))
    pytester.makeconftest(CHILD_CONFTEST)
    pytester.makepyfile(CHILD_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=12)
    starts = log.read_text().split("\n")[:-1]
    assert sorted(line.split()[0] for line in starts) == ["openinference", "otel-genai"]  # not one per worker
    assert len({line.split()[1] for line in starts}) == 1  # both in the controller, which outlives the workers
    for name in ("chat-basic", "chat-streaming", "embeddings-basic", "embeddings-base64", "responses-basic"):
        assert (spans / f"{name}.json").read_bytes() == (SPANS / f"{name}.json").read_bytes(), name
        assert (spans / "otel-genai" / f"{name}.json").read_bytes() == (SPANS / "otel-genai" / f"{name}.json").read_bytes()


def test_a_run_that_does_not_record_starts_no_recording_service(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.delenv("RECORD_SPANS", raising=False)
    pytester.makeconftest("""
import os

from testopeninference.recorder.shared_recording import RecordingService

_start = RecordingService.start_in_background


def _logged(self):
    open(os.environ["SERVICE_LOG"], "a").write("started\\n")
    return _start(self)


RecordingService.start_in_background = _logged
""")
    pytester.makepyfile("def test_nothing_to_record():\n    pass\n")
    log = pytester.path / "service.log"
    monkeypatch.setenv("SERVICE_LOG", str(log))
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2").assert_outcomes(passed=1)
    assert not log.exists()
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--record-spans").assert_outcomes(passed=1)
    assert log.read_text() == "started\n"

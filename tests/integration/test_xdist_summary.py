"""Under pytest-xdist, the plugin's closing lines (goldens recorded, body keys tolerated) come from the controller,
gathered from every worker, once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import CASSETTES

CHILD_TEST = """
import pytest

from testopeninference import get_span


@pytest.mark.parametrize("cassette", ["embeddings-basic", "chat-basic"])
def test_record(cassette):
    assert get_span(cassette).name


def test_tolerated(fake_openai):
    assert fake_openai.ignore_body_keys == ("stream",)
"""


def test_the_closing_summary_is_printed_once_by_the_controller(pytester: pytest.Pytester, tmp_path: Path,
                                                                monkeypatch):
    monkeypatch.setenv("TESTOPENINFERENCE_SPANS_DIR", str(tmp_path / "spans"))
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(CASSETTES))
    monkeypatch.delenv("RECORD_SPANS", raising=False)
    pytester.makepyfile(CHILD_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--record-spans",
                                           "--ignore-body-key", "stream")
    result.assert_outcomes(passed=3)
    lines = result.stdout.lines
    assert len([line for line in lines if line.startswith("testopeninference: 2 golden(s) recorded in ")]) == 1
    tolerated = [line for line in lines if "tolerated" in line]
    assert tolerated == ["testopeninference: request body keys the fake OpenAI server tolerated: stream"]

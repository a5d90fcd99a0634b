from __future__ import annotations

from pathlib import Path

import pytest

from testopeninference.recorder.config import Settings
from testopeninference.recorder.session import SpanRecorder
from tests.helpers import CASSETTES


@pytest.fixture(autouse=True)
def _own_goldens_only(monkeypatch):
    """Integration tests record into temporary spans directories: there, a golden the packaged library
    already holds must count as missing (TESTOPENINFERENCE_LIBRARY=false), or nothing would be recorded.
    Tests of the library beside the user's own goldens set it back to true."""
    monkeypatch.setenv("TESTOPENINFERENCE_LIBRARY", "false")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def module_spans_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spans")


@pytest.fixture(scope="module")
def recorder(module_spans_dir: Path):
    """One recorder (one proxy process) for a whole test module, writing to a temporary directory."""
    with SpanRecorder(Settings(cassettes_dir=CASSETTES, spans_dir=module_spans_dir)) as running:
        yield running

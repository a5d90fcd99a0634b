"""Project-wide pytest setup: stop the shared span recorders when the session ends."""

from __future__ import annotations

import pytest

from testopeninference import close_recorders


@pytest.fixture(scope="session", autouse=True)
def _stop_recorders_at_end():
    yield
    close_recorders()

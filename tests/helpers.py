"""Shared test helpers: where the project and the reference corpus are."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
CASSETTES = PROJECT / "cassettes"
SPANS = PROJECT / "spans"
REFERENCE = PROJECT.parent / "shared" / "reference"


def need_reference() -> Path:
    """The reference corpus, or skip when this checkout has none beside it."""
    if not (REFERENCE / "cassettes").is_dir():
        pytest.skip(f"reference corpus not found at {REFERENCE}")
    return REFERENCE

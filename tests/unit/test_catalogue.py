"""The catalogue's names: a broken cassette is one name among the others, not an error for all of them."""

from __future__ import annotations

import shutil
from pathlib import Path

from testopeninference import list_cassettes
from tests.helpers import CASSETTES


def test_list_cassettes_names_a_broken_cassette_beside_the_others_without_reading_them(tmp_path: Path):
    shutil.copy(CASSETTES / "chat-basic.yaml", tmp_path)
    (tmp_path / "chat-broken.yaml").write_text("version: 2\ninteractions: [\n", encoding="utf-8")
    assert list_cassettes(cassettes_dir=tmp_path) == ["chat-basic", "chat-broken"]
    assert list_cassettes() == sorted(path.stem for path in CASSETTES.glob("*.yaml"))

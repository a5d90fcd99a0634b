from pathlib import Path

import pytest

from testopeninference.recorder.manifest import MANIFEST_NAME, Manifest, Provenance, file_sha256, staleness
from testopeninference.errors import InvalidGoldenSpanError

PACKAGES = {"openai": "3.54.0", "opentelemetry-sdk": "1.45.2"}


def test_entries_round_trip_and_share_version_sets(tmp_path: Path):
    manifest = Manifest(tmp_path)
    manifest.update(tmp_path / "a.json", Provenance("1" * 64, PACKAGES))
    manifest.update(tmp_path / "b.json", Provenance("2" * 64, PACKAGES))
    assert manifest.read() == {"a.json": Provenance("1" * 64, PACKAGES), "b.json": Provenance("2" * 64, PACKAGES)}
    text = (tmp_path / MANIFEST_NAME).read_text()
    assert text.count("openai: 3.54.0") == 1  # one version set, named by its hash
    manifest.remove(tmp_path / "a.json")
    assert list(manifest.read()) == ["b.json"]


def test_writing_the_same_entries_gives_the_same_bytes(tmp_path: Path):
    manifest = Manifest(tmp_path)
    manifest.update(tmp_path / "a.json", Provenance("1" * 64, PACKAGES))
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    manifest.update(tmp_path / "a.json", Provenance("1" * 64, dict(reversed(list(PACKAGES.items())))))
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before


def test_staleness_reasons(tmp_path: Path):
    cassette = tmp_path / "c.yaml"
    cassette.write_text("version: 2\n")
    fresh = Provenance(file_sha256(cassette), PACKAGES)
    assert staleness(fresh, cassette, PACKAGES) is None
    assert staleness(None, cassette, PACKAGES) is None
    assert staleness(Provenance("0" * 64, PACKAGES), cassette, PACKAGES) == "its cassette changed"
    moved = {**PACKAGES, "openai": "3.55.0"}
    assert staleness(fresh, cassette, moved) == "pinned versions moved: openai 3.54.0 -> 3.55.0"


def test_an_unreadable_manifest_says_how_to_recover(tmp_path: Path):
    (tmp_path / MANIFEST_NAME).write_text("goldens: [unclosed\n")
    with pytest.raises(InvalidGoldenSpanError, match="unreadable manifest"):
        Manifest(tmp_path).read()


def test_the_project_manifest_covers_every_golden():
    from tests.helpers import SPANS

    goldens = [p for p in SPANS.rglob("*.json") if not p.name.endswith(".logs.json")]
    assert sorted(Manifest(SPANS).read()) == sorted(p.relative_to(SPANS).as_posix() for p in goldens)

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


TRICKY = ["1.0", "12", "0x1f", "null", "yes", "No", "on", "~", "-a", ".a", "a:b", "a b", "a#b", "'q'", "é.json",
          "1e3", "1.2.3", "0.66b2", "1_000", "x" * 130, "", "true.json", "a/b-c.json", "+1", "1:20", "=", "<<"]


def _random_scalar(rng) -> str:
    roll = rng.random()
    if roll < 0.03:
        return rng.choice(TRICKY)
    characters = "abz019._/+-" if roll < 0.95 else "abz019._/+- :#'\""
    return rng.choice("abz019_") + "".join(rng.choice(characters) for _ in range(rng.randint(0, 11)))


def test_the_fast_emitter_writes_what_yaml_dump_writes():
    """Every document: ``_emit_plain`` gives ``yaml.dump``'s bytes, or gives way to it (None)."""
    import random

    import yaml

    from testopeninference.recorder.manifest import _DUMPER, _emit_plain

    rng, emitted = random.Random(13), 0
    for _ in range(5000):
        document = {top: {_random_scalar(rng): {_random_scalar(rng): _random_scalar(rng)
                                                for _ in range(rng.randint(1, 2))} for _ in range(rng.randint(1, 2))}
                    for top in ("goldens", "versions")}
        fast = _emit_plain(document)
        if fast is not None:
            emitted += 1
            assert fast == yaml.dump(document, Dumper=_DUMPER, sort_keys=False), document
    assert emitted > 100  # the plain path is really exercised


def test_the_project_manifest_is_written_by_the_fast_emitter_byte_for_byte():
    from tests.helpers import SPANS
    from testopeninference.recorder.manifest import HEADER, _render

    text = (SPANS / MANIFEST_NAME).read_text()
    entries = Manifest(SPANS).read()
    assert _render(entries) == text and text.startswith(HEADER)


def test_a_manifest_another_process_changed_is_read_again_before_writing(tmp_path: Path):
    ours, theirs = Manifest(tmp_path), Manifest(tmp_path)
    ours.update(tmp_path / "a.json", Provenance("1" * 64, PACKAGES))
    theirs_text = (tmp_path / MANIFEST_NAME).read_text().replace("1" * 64, "3" * 64)
    (tmp_path / MANIFEST_NAME).write_text(theirs_text)  # as another process would, between our writes
    ours.update(tmp_path / "b.json", Provenance("2" * 64, PACKAGES))
    assert ours.read()["a.json"].cassette_sha256 == "3" * 64 and "b.json" in ours.read()

"""Files of an atomic group written beforehand (``prepare``): the commit only renames them."""

from __future__ import annotations

from pathlib import Path

from testopeninference.recorder.atomic import discard, prepare, write_atomic_group


def test_a_prepared_file_is_complete_before_the_group_and_renamed_by_it(tmp_path: Path):
    golden, manifest = tmp_path / "golden.json", tmp_path / "manifest.yaml"
    prepared = prepare(golden, "span")
    assert Path(prepared.temporary).read_text() == "span" and not golden.exists()
    write_atomic_group({manifest: "entry", golden: prepared})
    assert golden.read_text() == "span" and manifest.read_text() == "entry"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["golden.json", "manifest.yaml"]


def test_discarding_leaves_no_temporary(tmp_path: Path):
    prepared = prepare(tmp_path / "golden.json", "span")
    discard([prepared, None, "text"])
    assert list(tmp_path.iterdir()) == []


def test_a_failed_group_removes_its_prepared_files_too(tmp_path: Path):
    prepared = prepare(tmp_path / "golden.json", "span")
    blocked = tmp_path / "a-directory"
    (blocked / "inside").mkdir(parents=True)  # renaming a file over a non-empty directory fails
    try:
        write_atomic_group({tmp_path / "golden.json": prepared, blocked: "x"})
    except OSError:
        pass
    else:
        raise AssertionError("the rename over a directory should fail")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-directory"]

"""Parsed cassettes, goldens and manifests are kept while their files are unchanged, and only then."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from testopeninference.recorder import file_cache, manifest as manifest_module, safe_yaml
from testopeninference.recorder.cassette import load_cassette
from testopeninference.recorder.manifest import Manifest, Provenance
from testopeninference.recorder.span_file import read_span
from tests.helpers import CASSETTES, SPANS

AN_HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def _age(path: Path, offset_ns: int = 0) -> None:
    """Date the file an hour back (past ``RECENT_SECONDS``), so the cache may keep it."""
    os.utime(path, ns=(AN_HOUR_AGO_NS + offset_ns, AN_HOUR_AGO_NS + offset_ns))


def _counting(parse):
    calls = []

    def counted(path: Path):
        calls.append(path)
        return parse(path)

    return counted, calls


def test_an_unchanged_file_is_parsed_once(tmp_path: Path):
    path = tmp_path / "x.txt"
    path.write_text("one")
    _age(path)
    parse, calls = _counting(lambda p: p.read_text())
    assert [file_cache.cached(parse, path) for _ in range(3)] == ["one"] * 3
    assert len(calls) == 1


def test_an_edit_of_the_same_size_and_a_replaced_file_are_seen_at_once(tmp_path: Path):
    path = tmp_path / "x.txt"
    path.write_text("one")
    _age(path)
    parse, calls = _counting(lambda p: p.read_text())
    assert file_cache.cached(parse, path) == "one"
    path.write_text("two")  # same size, in place
    _age(path, 1)
    assert file_cache.cached(parse, path) == "two"
    replacement = tmp_path / "y.txt"
    replacement.write_text("six")
    _age(replacement, 1)  # the same size and mtime: only the inode differs
    os.replace(replacement, path)
    assert file_cache.cached(parse, path) == "six" and len(calls) == 3


def test_a_recently_modified_file_is_parsed_on_every_read(tmp_path: Path):
    """An mtime tick is coarse: a same-size edit within it would otherwise go unseen."""
    path = tmp_path / "x.txt"
    path.write_text("one")
    parse, calls = _counting(lambda p: p.read_text())
    file_cache.cached(parse, path)
    path.write_text("two")
    assert file_cache.cached(parse, path) == "two" and len(calls) == 2


def test_a_deleted_golden_is_missing_at_once(tmp_path: Path):
    golden = tmp_path / "chat-basic.json"
    shutil.copy(SPANS / "chat-basic.json", golden)
    _age(golden)
    assert read_span(golden).name
    golden.unlink()
    with pytest.raises(FileNotFoundError):
        read_span(golden)


def test_a_caller_that_changes_its_span_does_not_change_the_next_callers(tmp_path: Path):
    golden = tmp_path / "chat-basic.json"
    shutil.copy(SPANS / "chat-basic.json", golden)
    _age(golden)
    first = read_span(golden)
    name, attributes = first.name, len(first.attributes)
    first.name = "changed"
    del first.attributes[:]
    second = read_span(golden)
    assert (second.name, len(second.attributes)) == (name, attributes)


def test_an_edited_cassette_is_read_anew(tmp_path: Path):
    path = tmp_path / "chat-basic.yaml"
    shutil.copy(CASSETTES / "chat-basic.yaml", path)
    _age(path)
    assert load_cassette(path) is load_cassette(path)  # kept
    path.write_text(path.read_text().replace("description:", "description: edited", 1))
    _age(path, 1)
    assert load_cassette(path).description.startswith("edited")


def test_the_manifest_is_read_once_per_process_unless_it_changes(tmp_path: Path, monkeypatch):
    counted, calls = _counting(lambda text: safe_yaml.load_yaml(text))
    monkeypatch.setattr(manifest_module, "load_yaml", counted)
    manifest = Manifest(tmp_path)
    manifest.update(tmp_path / "a.json", Provenance("1" * 64, {"openai": "1"}))
    _age(manifest.path)
    entries = Manifest(tmp_path).read()
    entries["a.json"].packages["openai"] = "changed by a caller"
    assert Manifest(tmp_path).read()["a.json"].packages == {"openai": "1"}
    assert len(calls) == 1  # one parse for both reads
    manifest.update(tmp_path / "b.json", Provenance("2" * 64, {"openai": "1"}))
    assert list(Manifest(tmp_path).read()) == ["a.json", "b.json"]


@pytest.mark.parametrize("text", [
    "&x 1", "a: &x 1", "b: *x", "[&a 1]", "[1,&a 2]", "{a: 1,*x : 2}", "\ufeff&x 1", "- &x 1", "? &k a\n: 1",
    "--- &x\na: 1", "a:\t&x 1", "a: !!str &x b", "a:\n  - &x\n    b: 1",
])
def test_the_c_loader_still_refuses_every_anchor_and_alias(text: str, monkeypatch):
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without LibYAML")
    monkeypatch.setattr(safe_yaml, "LOADER", yaml.CSafeLoader)
    with pytest.raises(yaml.YAMLError):  # AliasRefusedError, or a parse error where the alias is misplaced
        safe_yaml.load_yaml(text)


def test_an_ampersand_or_star_inside_a_scalar_costs_no_event_scan(monkeypatch):
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without LibYAML")
    monkeypatch.setattr(safe_yaml, "LOADER", yaml.CSafeLoader)
    monkeypatch.setattr(safe_yaml, "refuse_aliases", lambda text: pytest.fail("scanned"))
    assert safe_yaml.load_yaml("url: /v1/x?a=1&b=2\nsum: 2*3\n") == {"url": "/v1/x?a=1&b=2", "sum": "2*3"}


def test_cassettes_parse_with_libyaml_when_it_is_there():
    assert safe_yaml.LOADER is getattr(yaml, "CSafeLoader", safe_yaml.AliasRefusingSafeLoader)


def test_without_libyaml_the_python_loader_is_used_with_one_warning(monkeypatch):
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    monkeypatch.setattr(safe_yaml, "LOADER", safe_yaml.AliasRefusingSafeLoader)
    monkeypatch.setattr(safe_yaml, "_warned", False)
    with pytest.warns(RuntimeWarning, match="LibYAML"):
        assert safe_yaml.load_yaml("a: 1\n") == {"a": 1}
    with pytest.raises(safe_yaml.AliasRefusedError):
        safe_yaml.load_yaml("a: &x 1\n")

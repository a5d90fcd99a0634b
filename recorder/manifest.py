"""Provenance of the goldens: which cassette and which package versions made each one.

``spans/manifest.yaml`` maps each golden (path relative to the spans
directory) to the SHA-256 of its cassette and a set of package versions;
version sets are stored once and named by their own hash. A golden is
*stale* when its cassette changed since it was recorded or when the pinned
versions moved. Golden files themselves stay plain protojson ``Span``s.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import threading
from typing import Any
from pathlib import Path

import yaml

from testopeninference.recorder.atomic import write_atomic
from testopeninference.recorder.file_cache import cached
from testopeninference.recorder.safe_yaml import load_yaml
from testopeninference.recorder.resources import is_packaged
from testopeninference.errors import REINSTALL_HINT, AliasRefusedError, InvalidGoldenSpanError, record_command

MANIFEST_NAME = "manifest.yaml"


@dataclasses.dataclass(frozen=True)
class Provenance:
    cassette_sha256: str
    packages: dict[str, str]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _versions_id(packages: dict[str, str]) -> str:
    return _versions_id_of(tuple(sorted(packages.items())))


@functools.lru_cache(maxsize=256)
def _versions_id_of(packages: tuple[tuple[str, str], ...]) -> str:
    """Named by the hash of its JSON (sorted keys); the same few sets recur in every entry, so hashed once."""
    return hashlib.sha256(json.dumps(dict(packages), sort_keys=True).encode()).hexdigest()[:12]


class Manifest:
    """The manifest of one spans directory; callers hold ``recorder.locks.directory_lock`` to write.

    A recording writes ``text_with(...)`` together with its golden (``recorder.atomic.write_atomic_group``),
    so a golden never exists without its entry.
    """

    def __init__(self, spans_dir: Path) -> None:
        self.path = Path(spans_dir) / MANIFEST_NAME
        self.spans_dir = Path(spans_dir)

    def read(self) -> dict[str, Provenance]:
        """Every entry; the file is parsed once per process while it is unchanged (``recorder.file_cache``)."""
        if not self.path.exists():
            return {}
        return {golden: dataclasses.replace(p, packages=dict(p.packages))
                for golden, p in cached(_parse, self.path).items()}

    def key(self, golden: Path) -> str:
        """The golden's path relative to the spans directory; a golden that leads outside it is refused."""
        golden = Path(golden)
        try:
            return golden.resolve().relative_to(self.spans_dir.resolve()).as_posix()
        except ValueError:
            raise InvalidGoldenSpanError(
                f"golden {golden} leads outside the spans directory {self.spans_dir} (to {golden.resolve()}); "
                "replace the link with the golden file itself."
            ) from None

    def update(self, golden: Path, provenance: Provenance) -> None:
        write_atomic(self.path, self.text_with(golden, provenance))

    def text_with(self, golden: Path, provenance: Provenance) -> str:
        """The manifest's text with this golden's entry set, for writing together with the golden.

        Recording writes the manifest with every golden, so the text this process rendered last is kept with
        its entries: when the file still holds exactly that text (compared byte for byte, not by ``stat``), it
        is not parsed again. Another process's write changes the text and is parsed as usual.
        """
        key = self.key(golden)
        entries = self._entries_for_writing()
        entries[key] = provenance
        text = _render(entries)
        with _LAST_RENDERED_LOCK:
            _LAST_RENDERED[self.path] = (text, entries)
        return text

    def _entries_for_writing(self) -> dict[str, Provenance]:
        try:
            current = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return self.read()  # missing (no entries yet) or unreadable (read() says so)
        with _LAST_RENDERED_LOCK:
            text, entries = _LAST_RENDERED.get(self.path, (None, {}))
        return dict(entries) if current == text else _parse_text(current, self.path)

    def remove(self, golden: Path) -> None:
        entries = self.read()
        if entries.pop(self.key(golden), None) is not None:
            write_atomic(self.path, _render(entries))


_LAST_RENDERED: dict[Path, tuple[str, dict[str, Provenance]]] = {}
"""Per manifest path, the last text this process rendered and the entries it holds (``Manifest.text_with``)."""
_LAST_RENDERED_LOCK = threading.Lock()


def _parse(path: Path) -> dict[str, Provenance]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidGoldenSpanError(
            f"{path}: unreadable manifest ({_reason(error)}); {_repair_hint(path)}."
        ) from None
    return _parse_text(text, path)


def _parse_text(text: str, path: Path) -> dict[str, Provenance]:
    try:
        data: Any = load_yaml(text) or {}  # a wrong shape fails below, as a TypeError or so
        versions = data.get("versions") or {}
        return {
            golden: Provenance(entry["cassette_sha256"], dict(versions[entry["versions"]]))
            for golden, entry in (data.get("goldens") or {}).items()
        }
    except AliasRefusedError as error:
        line = f":{error.problem_mark.line + 1}" if error.problem_mark is not None else ""
        raise InvalidGoldenSpanError(
            f"{path}{line}: {error.problem} in the manifest; "
            f"{_repair_hint(path)}."
        ) from None
    except RecursionError as error:
        raise InvalidGoldenSpanError(
            f"{path}: unreadable manifest ({_reason(error)}); {_repair_hint(path)}."
        ) from None
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
        raise InvalidGoldenSpanError(
            f"{path}: unreadable manifest ({error!r}); {_repair_hint(path)}."
        ) from None


def _repair_hint(path: Path) -> str:
    if is_packaged(path):
        return REINSTALL_HINT
    return f"delete it and record every golden again ({record_command()}, for each convention)"


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""LibYAML's emitter writes the same bytes six times faster; the manifest is written with every golden."""


HEADER = "# Written by testopeninference: which cassette and package versions made each golden.\n"


def _render(entries: dict[str, Provenance]) -> str:
    ids = {golden: _versions_id(p.packages) for golden, p in entries.items()}
    versions = {ids[golden]: dict(sorted(p.packages.items())) for golden, p in entries.items()}
    goldens = {golden: {"cassette_sha256": p.cassette_sha256, "versions": ids[golden]}
               for golden, p in sorted(entries.items())}
    document = {"goldens": goldens, "versions": dict(sorted(versions.items()))}
    return HEADER + (_emit_plain(document) or yaml.dump(document, Dumper=_DUMPER, sort_keys=False))


def _emit_plain(document: dict[str, dict[str, dict[str, str]]]) -> str | None:
    """What ``yaml.dump`` writes for this three-level mapping of strings, written directly (the dump takes
    milliseconds, once per golden recorded); ``None`` where any part needs more than a plain block mapping
    (a quoted scalar, an empty mapping), which ``yaml.dump`` then writes. A test holds the two to the same bytes."""
    lines = []
    for top, middle in document.items():
        if not middle:
            return None
        lines.append(f"{top}:")
        for key, leaf in middle.items():
            if not leaf or not _plain(key):
                return None
            lines.append(f"  {key}:")
            for name, value in leaf.items():
                if not (_plain(name) and _plain(value)):
                    return None
                lines.append(f"    {name}: {value}")
    return "\n".join(lines) + "\n"


_PLAIN_CHARACTERS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]*")
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()  # the resolver both of PyYAML's safe dumpers use


@functools.lru_cache(maxsize=4096)
def _plain(text: str) -> bool:
    """Whether PyYAML writes ``text`` as a plain scalar, unquoted, as a simple key or a value: only letters,
    digits and ``_./+-`` (none that YAML reads as syntax), shorter than PyYAML's 128-character simple-key
    limit, and read back as a string (not ``1.0``, ``null``, ``yes`` or ``12``)."""
    return (len(text) < 128 and _PLAIN_CHARACTERS.fullmatch(text) is not None
            and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG)  # type: ignore[no-untyped-call]


def _reason(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return getattr(error, "strerror", None) or str(error)


def staleness(provenance: Provenance | None, cassette: Path, pinned: dict[str, str]) -> str | None:
    """Why a golden is stale, or None when it is up to date (or its provenance is unknown)."""
    if provenance is None:
        return None  # recorded before the manifest existed, or by hand: nothing says it is out of date
    if provenance.cassette_sha256 != file_sha256(cassette):
        return "its cassette changed"
    moved = sorted(name for name, version in provenance.packages.items() if pinned.get(name, version) != version)
    if moved:
        return "pinned versions moved: " + ", ".join(f"{n} {provenance.packages[n]} -> {pinned[n]}" for n in moved)
    return None

"""Baselines: the differences a gateway is known to have, so ``conform`` can gate CI from day one.

``--write-baseline FILE`` saves every difference of a run (per cassette: key,
kind, expected and actual in short, and an empty ``reason`` for a human to
fill; writing over an existing baseline keeps the reasons of the entries that still occur);
``--baseline FILE`` accepts those and fails only on new ones, and reports entries that no longer occur,
so the file only shrinks. Values are written as they read on any machine (stack-trace paths become
``site-packages/...``, loopback ports go), so rewriting an unchanged run changes nothing. An entry is
matched by cassette, key and kind (values may change: the entry is about the
key). Whole-cassette outcomes are entries with key ``(outcome)``. A baseline of another convention is a usage
error; entries for cassettes this run did not score (a typo, a ``-k``) and entries without a reason are
reported, never silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import yaml

from testopeninference.compare import Finding
from testopeninference.conform.outcomes import KINDS, CassetteResult, Outcome
from testopeninference.errors import InvalidBaselineError
from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.atomic import write_atomic
from testopeninference.recorder.safe_yaml import LOADER, load_yaml
from testopeninference.recorder.volatile import stable_stacktrace, without_loopback_ports

VERSION = 1
SUMMARY_CHARS = 120
_HEADER = """\
# testopeninference conform baseline: differences this gateway is known to have.
# `testopeninference conform --baseline THIS_FILE` fails only on differences not listed here, and reports
# entries that no longer occur (delete them). Say in each `reason` why the difference is accepted.
"""
_KNOWN_KINDS = frozenset({*KINDS, *(outcome.value for outcome in Outcome if outcome is not Outcome.MATCH)})


@dataclasses.dataclass(frozen=True)
class BaselineEntry:
    cassette: str
    key: str
    kind: str
    line: int  # in the baseline file, for messages
    reason: str = ""

    def describe(self) -> str:
        return f"{self.cassette}: {self.key} {self.kind} (baseline line {self.line})"


@dataclasses.dataclass(frozen=True)
class Baseline:
    path: Path
    entries: tuple[BaselineEntry, ...]
    convention: str | None = None  # the convention of the run that wrote it

    def check_convention(self, convention: str) -> None:
        """A usage error when the baseline lists another convention's differences than this run scores."""
        if self.convention is not None and self.convention != convention:
            raise InvalidBaselineError(
                f"{self.path}: the baseline is for the {self.convention} convention, this run scores "
                f"{convention}; pass --convention {self.convention}, or write a baseline for {convention} with "
                "--write-baseline.")

    def unexplained(self) -> list[BaselineEntry]:
        """Entries with an empty ``reason``."""
        return [entry for entry in self.entries if not entry.reason.strip()]

    def unscored(self, results: Sequence[CassetteResult], library: CassetteLibrary) -> list[str]:
        """A line per cassette the baseline names that this run did not score: unknown (with close names) or
        left out (``-k``)."""
        scored = {result.cassette for result in results}
        lines = []
        for name in dict.fromkeys(entry.cassette for entry in self.entries if entry.cassette not in scored):
            line = min(entry.line for entry in self.entries if entry.cassette == name)
            if name in library.names():
                lines.append(f"baseline entries for {name} (line {line}) not used: the cassette was not scored")
            else:
                lines.append(f"baseline entries for {name} (line {line}) name no cassette: "
                             f"{library.unknown_message(name)}")
        return lines

    def accepted(self, result: CassetteResult) -> list[Finding]:
        """The result's findings this baseline lists."""
        listed = {(e.key, e.kind) for e in self.entries if e.cassette == result.cassette}
        return [found for found in result.findings if (found.key, found.kind) in listed]

    def apply(self, results: Sequence[CassetteResult]) -> list[CassetteResult]:
        return [result.with_accepted(self.accepted(result)) for result in results]

    def stale(self, results: Sequence[CassetteResult]) -> list[BaselineEntry]:
        """Entries for a scored cassette that this run did not find: fixed, so they can go."""
        scored = {result.cassette: {(f.key, f.kind) for f in result.findings} for result in results}
        return [e for e in self.entries if e.cassette in scored and (e.key, e.kind) not in scored[e.cassette]]


def baseline_text(results: Iterable[CassetteResult], convention: str,
                  reasons: Mapping[tuple[str, str, str], str] | None = None) -> str:
    """The YAML of a baseline accepting every finding of ``results``; ``reasons`` by (cassette, key, kind)."""
    return _dump(_listed(results, reasons or {}), convention)


def _dump(cassettes: dict[str, list[dict[str, str]]], convention: str) -> str:
    document = {"version": VERSION, "convention": convention, "cassettes": cassettes}
    return _HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def _listed(results: Iterable[CassetteResult],
            reasons: Mapping[tuple[str, str, str], str]) -> dict[str, list[dict[str, str]]]:
    """Each cassette's entries, one per key and kind, with the reason already given for it."""
    cassettes: dict[str, list[dict[str, str]]] = {}
    for result in results:
        seen: set[tuple[str, str]] = set()
        for found in result.findings:
            if (found.key, found.kind) in seen:
                continue
            seen.add((found.key, found.kind))
            cassettes.setdefault(result.cassette, []).append({
                "key": found.key, "kind": found.kind, **_values(found),
                "reason": reasons.get((result.cassette, found.key, found.kind), "")})
    return cassettes


def _values(found: Finding) -> dict[str, str]:
    """Expected and actual in short; a finding without values (a span field, an outcome) gives its line."""
    if found.expected is None and found.actual is None:
        return {"expected": "", "actual": _summary(found.line)}
    return {"expected": _summary(found.expected), "actual": _summary(found.actual)}


def _summary(value: object) -> str:
    text = "" if value is None else without_loopback_ports(stable_stacktrace(str(value)))
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 3] + "..."


def write_baseline(path: Path, results: Iterable[CassetteResult], convention: str) -> int:
    """Write the baseline, keeping the reasons an existing baseline at ``path`` gives for entries still found;
    the number of entries that have no reason yet."""
    reasons = {(e.cassette, e.key, e.kind): e.reason for e in read_baseline(path).entries} if path.exists() else {}
    cassettes = _listed(results, reasons)
    try:
        write_atomic(path, _dump(cassettes, convention))
    except OSError as error:
        raise InvalidBaselineError(f"cannot write the baseline {path} ({error.strerror or error}); "
                                   "choose a file you can write.") from None
    return sum(1 for entries in cassettes.values() for entry in entries if not entry["reason"])


def read_baseline(path: Path) -> Baseline:
    """The baseline in ``path``, or one ``InvalidBaselineError`` naming the file and line of the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidBaselineError(f"cannot read the baseline {path} ({error}); write one with "
                                   "--write-baseline.") from None
    try:
        load_yaml(text)  # refuses anchors and aliases
        root = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise InvalidBaselineError(f"{where}: not valid YAML ({problem}); fix it, or write it anew with "
                                   "--write-baseline.") from None
    return Baseline(path, tuple(_entries(path, root)), _convention(path, root))


def _convention(path: Path, root: yaml.Node | None) -> str | None:
    node = _mapping(path, root, "the file must be a mapping with 'version' and 'cassettes'").get("convention")
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode) or not node.value:
        _fail(path, node, "'convention' must be a convention's name (openinference, otel-genai, ...)")
    return str(node.value)


def _entries(path: Path, root: yaml.Node | None) -> list[BaselineEntry]:
    mapping = _mapping(path, root, "the file must be a mapping with 'version' and 'cassettes'")
    version = mapping.get("version")
    if version is None or not isinstance(version, yaml.ScalarNode) or version.value != str(VERSION):
        _fail(path, version or root, f"'version' must be {VERSION}")
    cassettes = _mapping(path, mapping.get("cassettes") or root, "'cassettes' must map cassette names to lists")
    entries = []
    for name, listed in cassettes.items():
        if not isinstance(listed, yaml.SequenceNode):
            _fail(path, listed, f"cassette {name!r} must hold a list of entries (key, kind, reason)")
        for item in listed.value:
            fields = _mapping(path, item, "each entry must be a mapping with 'key' and 'kind'")
            key, kind = (_scalar(path, fields, field, item) for field in ("key", "kind"))
            if kind not in _KNOWN_KINDS:
                _fail(path, fields["kind"], f"kind {kind!r} is none of {', '.join(sorted(_KNOWN_KINDS))}")
            reason = fields.get("reason")
            entries.append(BaselineEntry(name, key, kind, item.start_mark.line + 1,
                                         str(reason.value) if isinstance(reason, yaml.ScalarNode) else ""))
    return entries


def _mapping(path: Path, node: yaml.Node | None, what: str) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        _fail(path, node, what)
    found: dict[str, yaml.Node] = {}
    for key, value in node.value:
        if str(key.value) in found:
            _fail(path, key, f"{key.value!r} appears twice; merge its entries into one list")
        found[str(key.value)] = value
    return found


def _scalar(path: Path, fields: dict[str, yaml.Node], field: str, owner: yaml.Node) -> str:
    node = fields.get(field)
    if not isinstance(node, yaml.ScalarNode) or not node.value:
        _fail(path, node or owner, f"each entry needs a '{field}' (a string)")
    return str(node.value)


def _fail(path: Path, node: yaml.Node | None, what: str) -> NoReturn:
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    raise InvalidBaselineError(f"{path}{line}: {what}; fix the baseline, or write it anew with --write-baseline.")

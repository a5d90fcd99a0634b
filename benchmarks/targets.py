"""Every row of issue 13's table, measured in one run, each against its target.

    python benchmarks/targets.py [--base-tree DIR] [--repeat N] [--seconds S] [--batches N] [--no-pytest]

Rows: ``get_span`` warm and cold and ``span_differences`` pairs per second (``benchmarks/goldens.py``),
collector ingest for protobuf and OTLP/JSON (``benchmarks/servers.py``), how many goldens strict protojson
parsing reads and how many are byte for byte what our Go-protojson writer makes of the parsed message,
``pytest -n 2`` and ``-n 4`` against a serial run (``--record-spans=all`` of ``test_get_all_spans`` into
a temporary directory; the three in turn, ``--repeat`` times, medians compared), and ``testopeninference
record --force`` of every cassette against the same command
of ``--base-tree`` (an older checkout, e.g. ``git worktree add ../base <commit>``), run alternately
``--repeat`` times, medians compared. The ratio is measured against the target, so that at least 1.0 meets
it: measured over target for rates and counts, target over measured for times.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TREE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TREE))
sys.path.insert(0, str(TREE / "benchmarks"))

import goldens as golden_rows  # noqa: E402  (benchmarks/goldens.py)
import servers  # noqa: E402  (benchmarks/servers.py)
from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span  # noqa: E402

from testopeninference.recorder import resources  # noqa: E402
from testopeninference.recorder.span_file import to_json  # noqa: E402

INGEST_MEDIA = {"protobuf": "application/x-protobuf", "OTLP/JSON": "application/json"}
"""Collector ingest rows: each is ``servers.ingest_spans_per_second(media, batches)``; a new encoding is one entry."""

INGEST_TARGETS = {"protobuf": 100_000, "OTLP/JSON": 20_000}

GO_CHECK = None
"""Hook for a real Go check: a function ``(paths) -> (readable, identical)`` run with Go's protojson; when set,
its counts replace the Python ones below (strict ``json_format.Parse`` and our Go-protojson writer)."""

# Run with an older tree's code in place of the installed package: its `testopeninference` and its `recorder`
# (imported as `testopeninference.recorder`), found before the editable install of this tree.
_TREE_LAUNCHER = """
import importlib.util, sys
tree = sys.argv.pop(1)

class TreeFinder:
    places = {"testopeninference": tree + "/testopeninference", "testopeninference.recorder": tree + "/recorder"}

    def find_spec(self, name, path=None, target=None):
        if name in self.places:
            return importlib.util.spec_from_file_location(
                name, self.places[name] + "/__init__.py", submodule_search_locations=[self.places[name]])
        return None

sys.meta_path.insert(0, TreeFinder())
from testopeninference.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclasses.dataclass(frozen=True)
class Row:
    what: str
    measured: str
    target: str
    ratio: float  # >= 1.0 meets the target


def get_span_and_comparison_rows(seconds: float) -> list[Row]:
    rows = []
    for what, value, unit, target in golden_rows.rows(seconds):
        if unit == "pairs/s":
            rows.append(Row(what, f"{value:,.0f} {unit}", f">= {target:,} {unit}", value / target))
        else:
            rows.append(Row(what, f"{value:.3f} {unit}", f"<= {target} {unit}", target / value))
    return rows


def ingest_rows(batches: int) -> list[Row]:
    rows = []
    for name, media in INGEST_MEDIA.items():
        rate = servers.ingest_spans_per_second(media, batches)
        target = INGEST_TARGETS[name]
        rows.append(Row(f"collector ingest, {name}", f"{rate:,.0f} spans/s", f">= {target:,} spans/s", rate / target))
    return rows


def golden_file_rows() -> list[Row]:
    paths = sorted(resources.SPANS.rglob("*.json"))
    if GO_CHECK is not None:
        readable, identical = GO_CHECK(paths)
    else:
        readable = identical = 0
        for path in paths:
            text = path.read_text(encoding="utf-8")
            message = LogsData() if path.name.endswith(".logs.json") else Span()
            try:
                json_format.Parse(text, message)  # strict, as protojson.Unmarshal: unknown fields fail
            except json_format.ParseError:
                continue
            readable += 1
            identical += to_json(message) == text
    how = "Go protojson" if GO_CHECK is not None else "strict parse; our Go-protojson writer"
    total = len(paths)
    return [
        Row(f"goldens readable ({how})", f"{readable}/{total}", f"{total}/{total}", readable / total),
        Row(f"goldens byte-identical ({how})", f"{identical}/{total}", f"{total}/{total}", identical / total),
    ]


def pytest_rows(repeat: int) -> list[Row]:
    """Serial, ``-n 2`` and ``-n 4`` in turn, ``repeat`` times (all see the same load), medians compared."""
    runs: dict[int, list[float]] = {0: [], 2: [], 4: []}
    for _ in range(repeat):
        for workers, seconds in runs.items():
            seconds.append(_pytest_seconds(workers))
    serial = statistics.median(runs[0])
    rows = []
    for workers in (2, 4):
        seconds = statistics.median(runs[workers])
        rows.append(Row(f"pytest -n {workers} vs serial ({serial:.1f} s), --record-spans=all", f"{seconds:.1f} s",
                        f"< {serial:.1f} s", serial / seconds))
    return rows


def _pytest_seconds(workers: int) -> float:
    with tempfile.TemporaryDirectory() as spans:
        env = {**os.environ, "TESTOPENINFERENCE_SPANS_DIR": spans, "DOCKER_HOST": "unix:///nonexistent.sock"}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_golden_spans.py",
                   "-k", "test_get_all_spans", "--record-spans=all", "-n", str(workers)]
        started = time.perf_counter()
        subprocess.run(command, cwd=TREE, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def record_rows(base_tree: Path | None, repeat: int) -> list[Row]:
    """Both trees record the same cassettes: the base's (cassettes added since, other providers', are left out)."""
    names = sorted(path.stem for path in ((base_tree or TREE) / "cassettes").glob("*.yaml"))
    ours, base = [], []
    for _ in range(repeat):  # alternately, so both see the same load
        ours.append(_record_seconds(None, names))
        if base_tree is not None:
            base.append(_record_seconds(base_tree, names))
    measured = statistics.median(ours)
    if not base:
        return [Row(f"record --force, {len(names)} cassettes (no --base-tree)", f"{measured:.2f} s", "<= 0.6x base",
                    0.0)]
    before = statistics.median(base)
    return [Row(f"record --force, the base's {len(names)} cassettes, vs base ({before:.2f} s)", f"{measured:.2f} s",
                f"<= {0.6 * before:.2f} s", 0.6 * before / measured)]


def _record_seconds(tree: Path | None, names: list[str]) -> float:
    """Wall time of the whole command (imports included), as a user sees it."""
    command = [sys.executable, "-m", "testopeninference"] if tree is None else [sys.executable, "-c", _TREE_LAUNCHER,
                                                                                str(tree.resolve())]
    with tempfile.TemporaryDirectory() as spans:
        started = time.perf_counter()
        subprocess.run([*command, "record", "--force", "--spans-dir", spans, *names], cwd=tree or TREE, check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-tree", type=Path, default=None, help="older checkout for the record --force row")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pytest and record --force row (median)")
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each comparison row")
    parser.add_argument("--batches", type=int, default=100, help="512-span batches per ingest row")
    parser.add_argument("--no-pytest", action="store_true", help="skip the pytest -n rows (a minute)")
    args = parser.parse_args()
    rows = get_span_and_comparison_rows(args.seconds) + ingest_rows(args.batches) + golden_file_rows()
    rows += [] if args.no_pytest else pytest_rows(args.repeat)
    rows += record_rows(args.base_tree, args.repeat)
    print(f"{'what':<58} {'measured':>16} {'target':>18} {'ratio':>6}")
    for row in rows:
        print(f"{row.what:<58} {row.measured:>16} {row.target:>18} {row.ratio:>5.2f}x {'ok' if row.ratio >= 1 else 'MISSED'}")


if __name__ == "__main__":
    main()

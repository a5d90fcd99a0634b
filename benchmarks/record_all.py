"""Record every cassette into an empty directory: one proxy for all vs a fresh proxy per cassette.

The second is the reference harness's strategy. Both run in this one process,
one after the other, so their ratio is meaningful on a noisy machine even
when the absolute times are not. Targets (issue 2): one proxy records all
cassettes in at most 3 s including start-up, at least 15x faster than a
proxy per cassette.

    python benchmarks/record_all.py [--cassettes-dir DIR] [--backend local|docker]

With ``--backend docker`` (and the TESTOPENINFERENCE_DOCKER_* settings) it
compares one container for all cassettes with a container per cassette.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import filecmp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testopeninference.recorder.cassette import CassetteLibrary  # noqa: E402
from testopeninference.recorder.config import Settings  # noqa: E402
from testopeninference.recorder.session import SpanRecorder  # noqa: E402


def one_proxy(settings: Settings, names: list[str]) -> float:
    started = time.perf_counter()
    with SpanRecorder(settings) as recorder:
        for name in names:
            recorder.record(name)
    return time.perf_counter() - started


def proxy_per_cassette(settings: Settings, names: list[str]) -> float:
    started = time.perf_counter()
    for name in names:
        with SpanRecorder(settings) as recorder:
            recorder.record(name)
    return time.perf_counter() - started


def _target(applies: bool, met: bool, target: str) -> str:
    return f"   target {target}: {'met' if met else 'MISSED'}" if applies else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cassettes-dir", type=Path, default=Settings().cassettes_dir)
    parser.add_argument("--backend", default="local", choices=("local", "docker"))
    args = parser.parse_args()
    names = CassetteLibrary(args.cassettes_dir).names()
    base = Settings.from_env(cassettes_dir=args.cassettes_dir, backend=args.backend)
    if args.backend == "docker":  # build the image first: its one-off cost is not what is compared
        with SpanRecorder(replace(base, spans_dir=Path(tempfile.mkdtemp()))):
            pass
    with tempfile.TemporaryDirectory() as shared_dir, tempfile.TemporaryDirectory() as fresh_dir:
        shared = one_proxy(replace(base, spans_dir=Path(shared_dir)), names)
        fresh = proxy_per_cassette(replace(base, spans_dir=Path(fresh_dir)), names)
        same = not filecmp.dircmp(shared_dir, fresh_dir).diff_files
    ratio = fresh / shared
    unit = "container" if args.backend == "docker" else "proxy"
    print(f"backend {args.backend}, {len(names)} cassettes, identical goldens both ways: {same}")
    print(f"one {unit} for all (start-up included): {shared:7.2f} s" + _target(args.backend == "local", shared <= 3, "<= 3 s"))
    print(f"a fresh {unit} per cassette:            {fresh:7.2f} s")
    print(f"ratio:                                {ratio:7.1f}x" + _target(args.backend == "local", ratio >= 15, ">= 15x"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

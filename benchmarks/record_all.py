"""Record every cassette into an empty directory: one proxy for all vs a fresh proxy per cassette.

The second is the reference harness's strategy. Both run in this one process,
one after the other, so their ratio is meaningful on a noisy machine even
when the absolute times are not. Targets (issue 2): one proxy records all
cassettes in at most 3 s including start-up, at least 15x faster than a
proxy per cassette.

    python benchmarks/record_all.py [--cassettes-dir DIR]
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recorder.cassette import CassetteLibrary  # noqa: E402
from recorder.config import Settings  # noqa: E402
from recorder.session import SpanRecorder  # noqa: E402


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cassettes-dir", type=Path, default=Settings().cassettes_dir)
    args = parser.parse_args()
    names = CassetteLibrary(args.cassettes_dir).names()
    with tempfile.TemporaryDirectory() as shared_dir, tempfile.TemporaryDirectory() as fresh_dir:
        shared = one_proxy(Settings(cassettes_dir=args.cassettes_dir, spans_dir=Path(shared_dir)), names)
        fresh = proxy_per_cassette(Settings(cassettes_dir=args.cassettes_dir, spans_dir=Path(fresh_dir)), names)
        same = not filecmp.dircmp(shared_dir, fresh_dir).diff_files
    ratio = fresh / shared
    print(f"cassettes:                     {len(names)}")
    print(f"one proxy for all (start-up included): {shared:6.2f} s   target <= 3 s: {'met' if shared <= 3 else 'MISSED'}")
    print(f"fresh proxy per cassette:              {fresh:6.2f} s")
    print(f"ratio:                                 {ratio:6.1f}x   target >= 15x: {'met' if ratio >= 15 else 'MISSED'}")
    print(f"ceiling for {len(names)} cassettes (start-up free): {len(names)}x; identical goldens: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

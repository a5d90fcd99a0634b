"""Record the OpenInference goldens of every provider with one proxy process, and compare per-cassette cost.

Targets (issue 16): one proxy start-up serves OpenAI, Anthropic and Cohere whatever the number of
providers, and a cassette of the new shapes (Anthropic Messages and token counting, Cohere Rerank, OpenAI
speech) costs at most 1.5x what an OpenAI cassette of the earlier shapes costs, measured in the same run
(the median of ``--rounds`` recordings per cassette, so a noisy neighbour weighs little).

    python benchmarks/providers.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testopeninference.recorder.config import Settings  # noqa: E402
from testopeninference.recorder.endpoints import Endpoint, endpoint_of  # noqa: E402
from testopeninference.recorder.session import SpanRecorder  # noqa: E402

NEW_SHAPES = {Endpoint.MESSAGES, Endpoint.COUNT_TOKENS, Endpoint.RERANK, Endpoint.SPEECH}


def record_rounds(settings: Settings, rounds: int) -> tuple[dict[str, list[float]], int, float]:
    """Seconds per cassette per round, the number of proxy start-ups, and the whole time."""
    started = time.perf_counter()
    seconds: dict[str, list[float]] = {}
    with SpanRecorder(settings) as recorder:
        proxy_url = recorder._proxy_url  # noqa: SLF001 - a restarted proxy would get a new address
        for _ in range(rounds):
            for name in recorder.library.names():
                seconds.setdefault(name, []).append(recorder.record(name, force=True).seconds)
        starts = 1 if recorder._proxy_url == proxy_url else 2  # noqa: SLF001
        groups = {name: endpoint_of(recorder.library.load(name)) in NEW_SHAPES for name in seconds}
    return {("new" if groups[n] else "openai") + ":" + n: s for n, s in seconds.items()}, starts, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = Settings.from_env(convention="openinference", backend="local")
    with tempfile.TemporaryDirectory() as spans_dir:
        seconds, starts, total = record_rounds(replace(base, spans_dir=Path(spans_dir)), args.rounds)
    medians = {key: statistics.median(values) for key, values in seconds.items()}
    openai = [value for key, value in medians.items() if key.startswith("openai:")]
    new = [value for key, value in medians.items() if key.startswith("new:")]
    ratio = statistics.mean(new) / statistics.mean(openai)
    print(f"{len(openai)} OpenAI cassettes and {len(new)} of the new shapes, {args.rounds} rounds, "
          f"{starts} proxy start-up(s), {total:.2f} s in total")
    print(f"per cassette (mean of medians): OpenAI {1000 * statistics.mean(openai):6.1f} ms, "
          f"new shapes {1000 * statistics.mean(new):6.1f} ms")
    print(f"ratio: {ratio:.2f}x   target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'}; "
          f"one start-up: {'met' if starts == 1 else 'MISSED'}")
    slowest = sorted(medians.items(), key=lambda item: -item[1])[:5]
    print("slowest: " + ", ".join(f"{key.split(':', 1)[1]} {1000 * value:.0f} ms" for key, value in slowest))
    return 0


if __name__ == "__main__":
    sys.exit(main())

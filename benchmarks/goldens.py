"""Golden reads and comparisons, in one process: the figures of issue 13 items 1 and 2 against their targets.

    python benchmarks/goldens.py [--seconds 1.0]

Rows: ``get_span("chat-basic")`` warm (median of many calls), cold (the process's first call, and the
median after the parse cache is emptied), and ``span_differences`` pairs per second with the chat-basic
golden against a copy: equal, one plain attribute differing, one value inside a JSON attribute differing.
The ratio is measured over target for rates and target over measured for times: at least 1.0 meets it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.proto.trace.v1.trace_pb2 import Span  # noqa: E402

from testopeninference import get_span  # noqa: E402
from testopeninference.compare import span_differences  # noqa: E402
from testopeninference.recorder import file_cache  # noqa: E402

CASSETTE = "chat-basic"


def call_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def pairs_per_second(expected: Span, actual: Span, seconds: float) -> float:
    pairs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            span_differences(expected, actual)
        pairs += 50
    return pairs / elapsed


def with_changed(golden: Span, key: str, change: Callable[[str], str]) -> Span:
    span = Span()
    span.CopyFrom(golden)
    attribute = next(a for a in span.attributes if a.key == key)
    attribute.value.string_value = change(attribute.value.string_value)
    return span


def changed_finish_reason(text: str) -> str:
    data = json.loads(text)
    data["choices"][0]["finish_reason"] = "length"
    return json.dumps(data)


def rows(seconds: float) -> list[tuple[str, float, str, float]]:
    """(what, measured, unit, target) for each row; ``benchmarks/targets.py`` prints them too."""
    first = call_ms(lambda: get_span(CASSETTE))
    cold = []
    for _ in range(30):
        file_cache.clear()
        cold.append(call_ms(lambda: get_span(CASSETTE)))
    warm = [call_ms(lambda: get_span(CASSETTE)) for _ in range(2000)]

    golden = get_span(CASSETTE)
    model = with_changed(golden, "llm.model_name", lambda text: text + "-other")
    output = with_changed(golden, "output.value", changed_finish_reason)
    assert len(span_differences(golden, model)) == len(span_differences(golden, output)) == 1
    assert span_differences(golden, get_span(CASSETTE)) == []

    return [
        ("get_span warm, median", statistics.median(warm), "ms", 0.2),
        ("get_span cold, first call of the process", first, "ms", 5.0),
        ("get_span cold, parse cache emptied, median", statistics.median(cold), "ms", 5.0),
        ("span_differences, equal spans", pairs_per_second(golden, get_span(CASSETTE), seconds), "pairs/s", 20_000),
        ("span_differences, one attribute differing", pairs_per_second(golden, model, seconds), "pairs/s", 5_000),
        ("span_differences, one JSON value differing", pairs_per_second(golden, output, seconds), "pairs/s", 5_000),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each comparison row")
    args = parser.parse_args()
    print(f"{'what':<46} {'measured':>14} {'target':>14} {'ratio':>6}")
    for what, value, unit, target in rows(args.seconds):
        rate = unit == "pairs/s"
        ratio = value / target if rate else target / value
        shown = f"{value:,.0f} {unit}" if rate else f"{value:.3f} {unit}"
        goal = f">= {target:,} {unit}" if rate else f"<= {target} {unit}"
        print(f"{what:<46} {shown:>14} {goal:>14} {ratio:>5.1f}x {'ok' if ratio >= 1 else 'MISSED'}")


if __name__ == "__main__":
    main()

"""The fast comparison gives exactly the lines of the full one (normalise everything, DeepDiff whole values).

The full one is kept here as the oracle; seeded random spans and JSON values, with the rules' edge cases (zero
values, ignored and volatile keys, repeated keys, 7 vs 7.0, true vs 1, NaN, objects and arrays that change
shape) must give the same lines. Equal values never reach DeepDiff or the normalising.
"""

from __future__ import annotations

import json
import math
import random

import pytest
from deepdiff import DeepDiff
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

import testopeninference.compare as compare
from testopeninference.recorder import json_diff
from testopeninference.recorder.span_file import read_span
from tests.helpers import SPANS
from tests.unit.test_compare import any_value


def _full_json_difference(expected: object, actual: object, shown: int = 3) -> str | None:
    """The comparison before it was made fast: DeepDiff over the whole values."""
    findings = []
    for report, items in DeepDiff(expected, actual).tree.items():
        for item in items:
            if report == "type_changes" and json_diff._same_number(item.t1, item.t2):
                continue
            path = json_diff.json_path(item.path(output_format="list")) or "(root)"
            if report.endswith("_removed"):
                findings.append(f"{path}: missing (expected {compare._show(item.t1)})")
            elif report.endswith("_added"):
                findings.append(f"{path}: unexpected (got {compare._show(item.t2)})")
            else:
                findings.append(f"{path}: expected {compare._show(item.t1)}, got {compare._show(item.t2)}")
    if not findings:
        return None
    findings.sort()
    more = f" (and {len(findings) - shown} more)" if len(findings) > shown else ""
    return "JSON differs at " + "; ".join(findings[:shown]) + more


LEAVES = [0, 1, 7, 7.0, 2.5, True, False, None, "", "a", "b", "stop", math.nan, -0.0, 10**20]


def _random_json(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth < 4 and roll < 0.3:
        return {rng.choice("abcdef"): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 4 and roll < 0.5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(LEAVES)


def _mutated(rng: random.Random, value: object) -> object:
    """A copy with one change somewhere (or none), often deep inside."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        return {**value, key: _mutated(rng, value[key])}
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        return [*value[:i], _mutated(rng, value[i]), *value[i + 1:]]
    choice = rng.random()
    if choice < 0.15:
        return value
    if choice < 0.3 and isinstance(value, dict):
        return {**value, rng.choice("ghij"): rng.choice(LEAVES)}
    if choice < 0.45 and isinstance(value, list):
        return value[1:] if value and rng.random() < 0.5 else [rng.choice(LEAVES), *value]
    return _random_json(rng)


@pytest.mark.parametrize("seed", range(4))
def test_json_differences_are_worded_exactly_as_deepdiff_over_the_whole_values(seed: int):
    rng = random.Random(seed)
    for _ in range(500):
        expected = _random_json(rng)
        actual = _mutated(rng, expected)
        assert compare._json_difference(expected, actual) == _full_json_difference(expected, actual), (expected, actual)


ATTRIBUTE_VALUES = ["openai", "", "{\"a\": 1, \"b\": [1, {\"c\": 0}]}", "{\"a\": 1.0, \"b\": [1, {\"c\": 2}]}",
                    "[1, 2]", "Error code: 404 - x", 0, 5, 5.0, math.nan, True, False, [1, 2], [], {"k": 1}]
KEYS = ["llm.system", "llm.model_name", "input.value", "exception.message", "exception.stacktrace",
        "exception.type", "llm.token_count.total", "extra.one", "extra.two"]


def _random_attributes(rng: random.Random) -> list[KeyValue]:
    keys = rng.sample(KEYS, rng.randint(0, len(KEYS)))
    if keys and rng.random() < 0.1:
        keys.append(rng.choice(keys))  # a repeated key
    return [KeyValue(key=key, value=any_value(rng.choice(ATTRIBUTE_VALUES))) for key in keys]


@pytest.mark.parametrize("seed", range(4))
def test_attribute_lines_are_those_of_normalising_every_attribute(seed: int):
    rng = random.Random(seed)
    for _ in range(400):
        want = _random_attributes(rng)
        got = [KeyValue(key=a.key, value=a.value) for a in want]
        for _ in range(rng.randint(0, 3)):
            if got and rng.random() < 0.5:
                got[rng.randrange(len(got))].value.CopyFrom(any_value(rng.choice(ATTRIBUTE_VALUES)))
            else:
                got.insert(rng.randint(0, len(got)), KeyValue(key=rng.choice(KEYS), value=any_value(rng.choice(ATTRIBUTE_VALUES))))
        error = rng.random() < 0.3
        ignore = tuple(rng.sample(["extra.*", "llm.system"], rng.randint(0, 2)))
        full = list(compare._attribute_differences(compare.normalise_attributes(want, error=error, ignore_keys=ignore),
                                                   compare.normalise_attributes(got, error=error, ignore_keys=ignore)))
        assert compare._attribute_lines(want, got, error, ignore) == full


def test_equal_spans_never_reach_deepdiff_or_the_normalising(monkeypatch):
    golden = read_span(SPANS / "chat-basic.json")
    monkeypatch.setattr(json_diff, "DeepDiff", lambda *a, **k: pytest.fail("DeepDiff ran"))
    monkeypatch.setattr(compare, "_normalise_string", lambda *a: pytest.fail("normalised"))
    assert compare.span_differences(golden, read_span(SPANS / "chat-basic.json")) == []


def test_deepdiff_runs_only_on_the_json_value_that_differs(monkeypatch):
    golden = read_span(SPANS / "chat-basic.json")
    actual = Span()
    actual.CopyFrom(golden)
    output = next(a for a in actual.attributes if a.key == "output.value")
    data = json.loads(output.value.string_value)
    data["choices"][0]["finish_reason"] = "length"
    message = data["choices"][0]["message"]
    message["refusal_note"] = "x"
    output.value.string_value = json.dumps(data)
    seen = []
    monkeypatch.setattr(json_diff, "DeepDiff", lambda one, other: seen.append((one, other)) or DeepDiff(one, other))
    assert compare.span_differences(golden, actual) == [
        "attribute 'output.value': JSON differs at choices[0].finish_reason: expected 'stop', got 'length'; "
        "choices[0].message.refusal_note: unexpected (got 'x')"]
    # Two differing leaves are worded without it; an object whose keys differ is its own and only input.
    [(one, other)] = seen
    assert other["refusal_note"] == "x" and set(other) - set(one) == {"refusal_note"}

"""The one JSON difference, shared by request matching and span comparison."""

from __future__ import annotations

import math

import pytest

import testopeninference.compare as compare
from testopeninference.recorder import json_diff, matchers
from testopeninference.recorder.json_diff import MISSING, JsonDifference, json_differences, json_equal


def test_request_matching_and_span_comparison_use_the_one_json_difference():
    assert compare.json_differences is json_diff.json_differences
    assert matchers.json_diff is json_diff
    for module in (compare, matchers):
        assert not hasattr(module, "_first_difference") and not hasattr(module, "DeepDiff")


@pytest.mark.parametrize(
    ("expected", "actual", "strict", "equal"),
    [
        (7, 7.0, False, True),
        (7, 7.0, True, False),
        (1, True, False, False),
        ({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2.0}]}, False, True),
        ({"a": 1}, {"a": 1, "b": None}, False, False),
        ([1, 2], [1], False, False),
    ],
)
def test_json_equal(expected, actual, strict, equal):
    assert json_equal(expected, actual, strict=strict) is equal
    assert (json_differences(expected, actual, strict=strict) == []) is equal


def test_findings_name_the_path_and_the_side_that_lacks_a_value():
    found = json_differences({"a": [1, {"b": 2}], "c": 1}, {"a": [1, {"b": 3}], "d": 1})
    assert sorted(found, key=lambda f: f.path) == [
        JsonDifference("a[1].b", 2, 3), JsonDifference("c", 1, MISSING), JsonDifference("d", MISSING, 1)]
    assert json_differences(["x", "y"], ["x"]) == [JsonDifference("[1]", "y", MISSING)]
    assert json_differences({"a": 1}, [1]) == [JsonDifference("", {"a": 1}, [1])]


def test_equal_values_and_differing_leaves_never_run_deepdiff(monkeypatch):
    monkeypatch.setattr(json_diff, "DeepDiff", lambda *a, **k: pytest.fail("DeepDiff ran"))
    assert json_differences({"a": [{"b": 1}], "c": "x"}, {"c": "x", "a": [{"b": 1.0}]}) == []
    assert json_differences({"a": [{"b": 1}]}, {"a": [{"b": 2}]}) == [JsonDifference("a[0].b", 1, 2)]
    assert json_differences(math.nan, math.nan) == []  # as DeepDiff says


def test_request_body_differences_keep_their_wording():
    assert list(matchers.json_differences({"t": [1, 2]}, {"t": [1]})) == ["t[1] missing from request (cassette 2)"]
    assert list(matchers.json_differences(1, "1")) == ['<body>: cassette 1, request "1"']

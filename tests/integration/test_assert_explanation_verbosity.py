"""``assert golden == span`` cuts values at 80 characters, and shows them whole under pytest's ``-vv``."""

from __future__ import annotations

import pytest

TEST = """
from opentelemetry.proto.trace.v1.trace_pb2 import Span

def test_spans():
    golden = Span(name="ChatCompletion")
    golden.attributes.add(key="output.value").value.string_value = "a" * 200
    actual = Span(name="ChatCompletion")
    actual.attributes.add(key="output.value").value.string_value = "b" * 200
    assert golden == actual
"""


@pytest.mark.parametrize(("verbosity", "whole"), [((), False), (("-v",), False), (("-vv",), True)])
def test_the_explanation_honours_pytest_verbosity(pytester: pytest.Pytester, verbosity, whole):
    pytester.makepyfile(TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", *verbosity)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*spans differ:*", "*attribute 'output.value': expected 'aaa*"])
    assert (f"got '{'b' * 200}'" in result.stdout.str()) is whole

"""Each reference cassette, recorded here, equals the reference golden under the lenient comparison.

The only differences allowed are attributes that newer instrumentation adds
(see shared/reference/README.md).
"""

from __future__ import annotations

import pytest

from testopeninference.recorder.config import Settings
from testopeninference.recorder.session import SpanRecorder
from testopeninference.recorder.span_file import read_span
from testopeninference.compare import span_differences
from tests.helpers import REFERENCE

NEWER_INSTRUMENTATION_ADDS = ("llm.finish_reason", "output.images.*.image.url")
NAMES = sorted(path.stem for path in (REFERENCE / "cassettes").glob("*.yaml"))


@pytest.fixture(scope="module")
def reference_recorder(tmp_path_factory):
    if not NAMES:
        pytest.skip(f"reference corpus not found at {REFERENCE}")
    settings = Settings(cassettes_dir=REFERENCE / "cassettes", spans_dir=tmp_path_factory.mktemp("reference-spans"))
    with SpanRecorder(settings) as recorder:
        yield recorder


@pytest.mark.parametrize("name", NAMES or ["(no reference corpus)"])
def test_reference_cassette_matches_reference_golden(reference_recorder: SpanRecorder, name: str):
    path = reference_recorder.record(name).path
    ours, golden = read_span(path), read_span(REFERENCE / "spans" / f"{name}.json")
    ignore = list(NEWER_INSTRUMENTATION_ADDS)
    if golden.name == "CreateEmbeddings":
        ignore.append("llm.system")
    assert span_differences(golden, ours, ignore_keys=ignore) == []

"""Every cassette has a golden for every convention that covers it.

``RECORD_SPANS=true pytest -k test_get_all_spans`` backfills the missing ones, for every convention.
"""

from __future__ import annotations

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.conventions import CONVENTIONS
from testopeninference import Endpoint, NotCoveredError, get_chat_span, get_span, list_cassettes
from testopeninference.catalogue import cassettes_by_endpoint, endpoint_of
from tests.helpers import CASSETTES

LIBRARY = CassetteLibrary(CASSETTES)
COVERED = [  # cassette-major: pytest-xdist workers reach different conventions first and start their proxies side by side
    pytest.param(convention.name, name, id=f"{convention.name}:{name}")
    for name in list_cassettes()
    for convention in CONVENTIONS.values()
    if not convention.why_not_covered(name, endpoint_of(LIBRARY.load(name)))
]


def expected_span_name(convention: str, cassette: str) -> str:
    loaded = LIBRARY.load(cassette)
    model = (loaded.request.json() or {}).get("model", "") if not loaded.request.is_multipart else ""
    return CONVENTIONS[convention].span_names[endpoint_of(loaded)].format(model=model)


@pytest.mark.parametrize(("convention", "cassette"), COVERED)
def test_get_all_spans(convention: str, cassette: str):
    span = get_span(cassette, convention=convention)
    assert span.name == expected_span_name(convention, cassette)
    assert len(span.attributes) > 0
    if convention == "openinference":
        assert span.kind == Span.SPAN_KIND_INTERNAL
        keys = {attribute.key for attribute in span.attributes}
        assert "openinference.span.kind" in keys and "input.value" in keys
    else:
        assert span.kind == Span.SPAN_KIND_CLIENT


def test_every_endpoint_has_a_cassette():
    grouped = cassettes_by_endpoint()
    assert all(grouped[endpoint] for endpoint in Endpoint), grouped


def test_get_chat_span_returns_the_golden_protobuf():
    span = get_chat_span("chat-basic")
    assert type(span).__module__ == "opentelemetry.proto.trace.v1.trace_pb2"
    assert span.name == "ChatCompletion"


def test_get_chat_span_refuses_other_endpoints():
    with pytest.raises(ValueError, match="is an .embeddings. cassette, not a chat one; use get_span"):
        get_chat_span("embeddings-basic")


def test_an_uncovered_cassette_has_no_golden_and_says_why():
    with pytest.raises(NotCoveredError, match="no otel-genai golden for 'image-generation-basic': otel-genai "
                                              "does not instrument the image endpoint"):
        get_span("image-generation-basic", convention="otel-genai")

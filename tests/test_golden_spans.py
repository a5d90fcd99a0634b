"""Every cassette has a golden span: ``RECORD_SPANS=true pytest -k test_get_all_spans`` backfills them."""

from __future__ import annotations

import pytest

from testopeninference import Endpoint, get_chat_span, get_span, list_cassettes
from testopeninference.catalogue import cassettes_by_endpoint


@pytest.mark.parametrize("cassette", list_cassettes())
def test_get_all_spans(cassette: str):
    span = get_span(cassette)
    endpoint = next(e for e, names in cassettes_by_endpoint().items() if cassette in names)
    assert span.name == endpoint.span_name
    assert len(span.attributes) > 0
    keys = {attribute.key for attribute in span.attributes}
    assert "openinference.span.kind" in keys and "input.value" in keys


def test_every_endpoint_of_this_issue_has_a_cassette():
    grouped = cassettes_by_endpoint()
    for endpoint in (Endpoint.CHAT, Endpoint.COMPLETION, Endpoint.EMBEDDINGS, Endpoint.IMAGE, Endpoint.TRANSCRIPTION):
        assert grouped[endpoint], endpoint


def test_get_chat_span_returns_the_golden_protobuf():
    span = get_chat_span("chat-basic")
    assert type(span).__module__ == "opentelemetry.proto.trace.v1.trace_pb2"
    assert span.name == "ChatCompletion"


def test_get_chat_span_refuses_other_endpoints():
    with pytest.raises(ValueError, match="is an .embeddings. cassette, not a chat one; use get_span"):
        get_chat_span("embeddings-basic")

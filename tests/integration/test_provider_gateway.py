"""A gateway test reads the same for every provider: OpenAI, Anthropic Messages, Cohere Rerank, OpenAI speech.

The gateway under test is this repository's own proxy, started as a real process the way a gateway author
starts theirs (every provider's upstream at the fake server, OTLP at the session collector). The test body has
no provider-specific code: the cassette decides the route, the kit picks the span, the golden is compared.
"""

from __future__ import annotations

import sys
from typing import Iterator

import pytest

from testopeninference import assert_span_equal
from testopeninference.kit import FakeOpenAI, OTLPCollector, send_cassette
from tests.helpers import PROJECT
from tests.integration.example_gateway import running_server

CASSETTES = ["chat-basic", "chat-streaming", "anthropic-messages-basic", "anthropic-messages-streaming",
             "anthropic-messages-tools", "anthropic-messages-bad-request", "anthropic-count-tokens-basic",
             "cohere-rerank-basic", "cohere-rerank-bad-request", "audio-speech-basic"]


@pytest.fixture(scope="session")
def gateway(fake_openai: FakeOpenAI, otlp_collector_session: OTLPCollector) -> Iterator[str]:
    settings = dict(OPENAI_BASE_URL=fake_openai.base_url, ANTHROPIC_BASE_URL=fake_openai.url,
                    CO_API_URL=fake_openai.url, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_collector_session.endpoint)
    with running_server([sys.executable, str(PROJECT / "openai_proxy.py")], settings) as url:
        yield url


@pytest.mark.parametrize("cassette", CASSETTES)
def test_every_providers_span_matches_its_golden_through_the_same_test(
    gateway: str, fake_openai: FakeOpenAI, otlp_collector_session: OTLPCollector, golden_span, cassette: str
) -> None:
    recorded = fake_openai.cassette(cassette)
    reply = send_cassette(gateway, recorded)
    assert reply.status == recorded.interactions[0].response.code, reply.body[:300]
    exported = otlp_collector_session.llm_span(reply.trace_id)
    assert_span_equal(golden_span(cassette), exported.span, gateway=True, golden=cassette)
    assert [request.cassette for request in fake_openai.requests(cassette)][-1:] == [cassette]

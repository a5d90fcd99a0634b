"""A gateway test reads the same for every provider: OpenAI, Anthropic Messages, Cohere Rerank, OpenAI speech.

The gateway under test is this repository's own proxy, started as a real process the way a gateway author
starts theirs (every provider's upstream at the fake server, OTLP at the session collector). The test body has
no provider-specific code: the cassette decides the route, the kit picks the span, the golden is compared.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Iterator

import httpx
import pytest

from testopeninference import assert_span_equal
from testopeninference.kit import FakeOpenAI, OTLPCollector, send_cassette
from tests.helpers import PROJECT

CASSETTES = ["chat-basic", "chat-streaming", "anthropic-messages-basic", "anthropic-messages-streaming",
             "anthropic-messages-tools", "anthropic-messages-bad-request", "anthropic-count-tokens-basic",
             "cohere-rerank-basic", "cohere-rerank-bad-request", "audio-speech-basic"]


@pytest.fixture(scope="session")
def gateway(fake_openai: FakeOpenAI, otlp_collector_session: OTLPCollector) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(OPENAI_BASE_URL=fake_openai.base_url, ANTHROPIC_BASE_URL=fake_openai.url, CO_API_URL=fake_openai.url,
               OTEL_EXPORTER_OTLP_ENDPOINT=otlp_collector_session.endpoint, OTEL_BSP_SCHEDULE_DELAY="10")
    process = subprocess.Popen([sys.executable, str(PROJECT / "openai_proxy.py"), "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    output = process.communicate(timeout=10)[0].decode(errors="replace")
    pytest.fail(f"the gateway did not become healthy at {url}:\n{output}", pytrace=False)


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

"""Example: testing a gateway's spans against the goldens.

This is the pattern a gateway author copies. The "gateway under test" here is
a process: this project's own instrumented proxy, started the way you would
start your gateway, with

- its OpenAI upstream set to the ``fake_openai`` fixture (``fake_openai.base_url``), and
- its OTLP endpoint set to the ``otlp_collector`` fixture (``otlp_collector.endpoint``).

Each chosen cassette's request is sent through it (``send_cassette`` adds the
``X-Cassette-Name`` header, which the gateway must pass upstream), and the
span it exported is compared with the golden by ``assert_span_equal``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import pytest

from testopeninference import assert_span_equal
from testopeninference.kit import send_cassette
from testopeninference.trace_context import assert_trace_propagated, new_traceparent, trace_problems
from tests.helpers import PROJECT

GATEWAY_SCOPE = "openinference.instrumentation.openai"  # where this gateway's LLM spans come from
CASSETTES = ["chat-basic", "chat-streaming", "chat-tools", "chat-bad-request", "embeddings-basic"]


@contextmanager
def gateway_process(fake_openai, otlp_collector, *extra_args: str):
    """Start the gateway under test with its upstream and OTLP endpoint pointed at the fixtures."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env.update(
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="unused",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="10",
    )
    process = subprocess.Popen(
        [sys.executable, str(PROJECT / "openai_proxy.py"), "--port", str(port), *extra_args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        assert process.poll() is None, process.stdout.read().decode()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def gateway(fake_openai, otlp_collector):
    with gateway_process(fake_openai, otlp_collector) as url:
        yield url


@pytest.mark.parametrize("cassette", CASSETTES)
def test_gateway_span_matches_golden(gateway, fake_openai, otlp_collector, golden_span, cassette):
    send_cassette(gateway, fake_openai.cassette(cassette))
    (exported,) = otlp_collector.wait_for_spans(scope=GATEWAY_SCOPE)
    assert_span_equal(golden_span(cassette), exported.span, golden=f"spans/{cassette}.json")


def test_trace_context_is_kept_by_a_propagating_gateway(fake_openai, otlp_collector):
    with gateway_process(fake_openai, otlp_collector, "--propagate") as url:
        caller = new_traceparent()
        send_cassette(url, fake_openai.cassette("chat-basic"), headers={"traceparent": caller.header()})
        (exported,) = otlp_collector.wait_for_spans(scope=GATEWAY_SCOPE)
    upstream = fake_openai.requests("chat-basic")[-1]
    assert_trace_propagated(caller, exported, upstream.headers)


def test_trace_context_check_catches_a_gateway_that_drops_it(gateway, fake_openai, otlp_collector):
    caller = new_traceparent()
    send_cassette(gateway, fake_openai.cassette("chat-basic"), headers={"traceparent": caller.header()})
    (exported,) = otlp_collector.wait_for_spans(scope=GATEWAY_SCOPE)
    upstream = fake_openai.requests("chat-basic")[-1]
    assert trace_problems(caller, exported, upstream.headers) == [
        "the request the gateway sent upstream carries no valid traceparent header"
    ]
    unrelated = new_traceparent()
    problems = trace_problems(unrelated, exported, upstream.headers)
    assert problems[0].startswith("the gateway's span is in trace ")


def test_a_wrong_span_fails_with_a_readable_message(pytester: pytest.Pytester):
    pytester.makepyfile(
        f"""
        from testopeninference import assert_span_equal, get_span

        def test_gateway():
            golden = get_span("chat-basic", cassettes_dir={str(PROJECT / "cassettes")!r},
                              spans_dir={str(PROJECT / "spans")!r})
            actual = type(golden)()
            actual.CopyFrom(golden)
            for attribute in actual.attributes:
                if attribute.key == "llm.token_count.total":
                    attribute.value.int_value += 1
            actual.attributes.add(key="gateway.route").value.string_value = "default"
            assert_span_equal(golden, actual, golden="spans/chat-basic.json")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*SpanMismatchError: span differs from golden spans/chat-basic.json",
        "*attribute 'llm.token_count.total': expected *, got *",
        "*attribute 'gateway.route': unexpected (got 'default')",
        "*If the golden is out of date, re-record it: testopeninference record --force chat-basic "
        "(or delete spans/chat-basic.json and run pytest --record-spans).",
    ])


def test_plain_assert_on_spans_explains_the_difference(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        def test_spans():
            assert Span(name="ChatCompletion") == Span(name="Completion")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*spans differ:*", "*name: expected 'ChatCompletion', got 'Completion'"])

"""LiteLLM's proxy as a real third-party gateway under test (``examples/litellm/``), in the README's pattern.

LiteLLM 1.109.3 runs from its own cached virtualenv with its ``arize_phoenix`` (OpenInference) callback,
upstream at a fake OpenAI server, OTLP at the session's collector. Each chat, completion and embeddings
cassette goes through it in a trace of its own; its LLM span (``litellm_request``, the innermost of the two
spans that carry OpenInference's LLM attributes) is compared with the golden. LiteLLM deviates from the
reference on every cassette: the test asserts that the kit works end to end (the reply is the cassette's,
the upstream request is attributed to it, nothing was refused beyond the known drift) and that the
differences (attribute key and kind) are exactly those of ``examples/litellm/baseline.yaml``, the baseline
``testopeninference conform`` gates on (``test_litellm_conform.py``), each with a reason, so that any change
in LiteLLM is noticed.

Skip it with ``-m "not litellm"``. After a deliberate LiteLLM upgrade, rewrite the baseline (its header says
how) and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import yaml
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.compare import compare_spans
from testopeninference.conform.baseline import read_baseline
from testopeninference.kit import FakeOpenAI, OTLPCollector, send_cassette
from testopeninference.recorder.config import Settings
from testopeninference.recorder.proxy_env import default_cache_dir
from testopeninference.span_selection import candidates
from tests.helpers import PROJECT
from tests.integration.litellm_gateway import (BASELINE, IGNORE_BODY_KEYS, LiteLLMGateway, litellm_executable,
                                               running_litellm)

pytestmark = [pytest.mark.integration, pytest.mark.litellm]

_BASELINE_ENTRIES = read_baseline(BASELINE).entries
CASSETTES = sorted(path.stem for path in (PROJECT / "cassettes").glob("*.yaml")
                   if path.stem.split("-")[0] in ("chat", "completion", "embeddings"))


@pytest.fixture(scope="session")
def litellm_upstream(span_settings: Settings) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server as LiteLLM's upstream, tolerating the request changes LiteLLM is known to make."""
    server = FakeOpenAI(*span_settings.cassette_dirs, ignore_body_keys=list(IGNORE_BODY_KEYS))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def litellm(litellm_upstream: FakeOpenAI, otlp_collector_session: OTLPCollector, span_settings: Settings,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMGateway]:
    """LiteLLM's proxy with the arize_phoenix callback, started once for the session."""
    executable = litellm_executable(span_settings.cache_dir or default_cache_dir(os.environ))
    with running_litellm(executable, litellm_upstream.base_url, otlp_collector_session.endpoint,
                         tmp_path_factory.mktemp("litellm")) as gateway:
        yield gateway


@pytest.mark.parametrize("cassette", CASSETTES)
def test_litellm_span_deviates_from_the_golden_exactly_as_recorded(
        litellm: LiteLLMGateway, litellm_upstream: FakeOpenAI, otlp_collector_session: OTLPCollector,
        golden_span: Callable[..., Span], cassette: str) -> None:
    recorded = litellm_upstream.cassette(cassette)
    refusals = len(litellm_upstream.errors())
    attributed = len(litellm_upstream.requests(cassette))
    reply = send_cassette(litellm.url, recorded, headers=litellm.headers)
    assert reply.status == recorded.interactions[0].response.code, reply.body[:500]
    assert litellm_upstream.errors()[refusals:] == []
    assert len(litellm_upstream.requests(cassette)) == attributed + 1  # one upstream request, this cassette's
    exported = otlp_collector_session.llm_span(reply.trace_id)
    found = _keys_and_kinds(compare_spans(golden_span(cassette), exported.span, gateway=True).findings)
    assert found == _baselined(cassette), (
        f"LiteLLM's span for {cassette} no longer deviates as {BASELINE} lists (key, kind); if the change is "
        "expected, rewrite the baseline as its header says")


def test_every_baseline_entry_has_a_reason() -> None:
    listed: dict[str, Any] = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))["cassettes"]
    assert sorted(listed) == CASSETTES
    unexplained = [(cassette, entry["key"]) for cassette, entries in listed.items() for entry in entries
                   if not str(entry.get("reason") or "").strip()]
    assert unexplained == []


def test_litellm_exports_two_spans_that_claim_to_be_the_llm_span_and_the_innermost_is_picked(
        litellm: LiteLLMGateway, litellm_upstream: FakeOpenAI, otlp_collector_session: OTLPCollector) -> None:
    reply = send_cassette(litellm.url, litellm_upstream.cassette("chat-basic"), headers=litellm.headers)
    trace = otlp_collector_session.wait_for_spans(3, trace_id=reply.trace_id)
    claiming = {item.span.name: item.span for item in candidates(trace)}
    assert sorted(claiming) == ["litellm_proxy_request", "litellm_request"]
    picked = otlp_collector_session.llm_span(reply.trace_id).span
    assert picked.name == "litellm_request"
    assert picked.parent_span_id == claiming["litellm_proxy_request"].span_id  # the outer one copies its attributes


def test_litellm_keeps_the_callers_trace_and_forwards_the_cassette_header(
        litellm: LiteLLMGateway, litellm_upstream: FakeOpenAI, otlp_collector_session: OTLPCollector) -> None:
    reply = send_cassette(litellm.url, litellm_upstream.cassette("embeddings-basic"), headers=litellm.headers)
    trace = otlp_collector_session.wait_for_spans(3, trace_id=reply.trace_id)
    server = next(item.span for item in trace if item.span.name == "litellm_proxy_request")
    assert server.parent_span_id.hex() == reply.traceparent.split("-")[2]  # a child of the caller's span
    upstream = litellm_upstream.requests("embeddings-basic")[-1]
    assert {key.lower() for key in upstream.headers} >= {"x-cassette-name"}


def test_litellm_otel_callback_over_grpc_exports_a_genai_span_the_kit_picks(
        litellm_upstream: FakeOpenAI, otlp_collector_session: OTLPCollector, span_settings: Settings,
        tmp_path: Path) -> None:
    executable = litellm_executable(span_settings.cache_dir or default_cache_dir(os.environ))
    with running_litellm(executable, litellm_upstream.base_url, otlp_collector_session.grpc_endpoint, tmp_path,
                         callback="otel", protocol="grpc") as gateway:
        reply = send_cassette(gateway.url, litellm_upstream.cassette("chat-basic"), headers=gateway.headers)
        assert reply.status == 200
        exported = otlp_collector_session.llm_span(reply.trace_id)  # the one span with gen_ai.operation.name
    attributes = {item.key: item.value.string_value for item in exported.span.attributes}
    assert exported.span.name == "litellm_request"
    assert attributes["gen_ai.request.model"] == "gpt-4.1-nano"
    names = {item.span.name for item in otlp_collector_session.trace(reply.trace_id)}
    assert {"Received Proxy Server Request", "POST /v1/chat/completions", "raw_gen_ai_request"} <= names


def test_litellm_arize_phoenix_over_grpc_exports_the_same_span(
        litellm_upstream: FakeOpenAI, otlp_collector_session: OTLPCollector, span_settings: Settings,
        golden_span: Callable[..., Span], tmp_path: Path) -> None:
    executable = litellm_executable(span_settings.cache_dir or default_cache_dir(os.environ))
    with running_litellm(executable, litellm_upstream.base_url, otlp_collector_session.grpc_endpoint, tmp_path,
                         protocol="grpc") as gateway:
        reply = send_cassette(gateway.url, litellm_upstream.cassette("chat-basic"), headers=gateway.headers)
        exported = otlp_collector_session.llm_span(reply.trace_id)
    found = _keys_and_kinds(compare_spans(golden_span("chat-basic"), exported.span, gateway=True).findings)
    assert found == _baselined("chat-basic")


_STARTER = """
import sys, time
from pathlib import Path
from tests.integration.litellm_gateway import running_litellm
with running_litellm(Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])) as gateway:
    print(gateway.url, flush=True)
    time.sleep(600)
"""


def test_litellm_dies_with_the_process_that_started_it(
        litellm_upstream: FakeOpenAI, otlp_collector_session: OTLPCollector, span_settings: Settings,
        tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the launcher sets prctl(PR_SET_PDEATHSIG), which is Linux's")
    executable = litellm_executable(span_settings.cache_dir or default_cache_dir(os.environ))
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER, str(executable), litellm_upstream.base_url,
         otlp_collector_session.endpoint, str(tmp_path)],
        cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        url = starter.stdout.readline().strip() if starter.stdout else ""
        assert url.startswith("http://127.0.0.1:"), "the starter did not start LiteLLM"
        assert httpx.get(f"{url}/health/liveliness", timeout=5).status_code == 200
    finally:
        starter.kill()  # SIGKILL: no finally block of the starter runs
        starter.wait(timeout=10)
        if starter.stdout:
            starter.stdout.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _answers(url):
        time.sleep(0.1)
    assert not _answers(url), f"LiteLLM at {url} outlived the process that started it"


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/health/liveliness", timeout=1)
        return True
    except httpx.TransportError:
        return False


def _keys_and_kinds(findings: Any) -> set[tuple[str, str]]:
    return {(found.key, found.kind) for found in findings}


def _baselined(cassette: str) -> set[tuple[str, str]]:
    """(key, kind) of the baseline's entries for ``cassette``: what conform's baseline matches on too."""
    return {(entry.key, entry.kind) for entry in _BASELINE_ENTRIES if entry.cassette == cassette}

"""The pytest plugin, run for real in a separate pytest (pytester)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import CASSETTES, SPANS

GOLDEN_TEST = """
from testopeninference import get_span

def test_golden(golden_span):
    assert golden_span("embeddings-basic").name == "CreateEmbeddings"
"""


@pytest.fixture
def spans_dir(tmp_path: Path, monkeypatch) -> Path:
    spans = tmp_path / "goldens"
    spans.mkdir()
    monkeypatch.setenv("TESTOPENINFERENCE_SPANS_DIR", str(spans))
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(CASSETTES))
    monkeypatch.delenv("RECORD_SPANS", raising=False)
    return spans


def test_without_the_option_a_missing_golden_fails(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(GOLDEN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*GoldenSpanMissingError: golden span *embeddings-basic.json does not exist*"])


def test_record_spans_option_records_the_missing_golden(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(GOLDEN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--record-spans")
    result.assert_outcomes(passed=1)
    assert (spans_dir / "embeddings-basic.json").read_bytes() == (SPANS / "embeddings-basic.json").read_bytes()


def test_recording_shows_one_line_per_golden_and_a_summary(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(GOLDEN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--record-spans")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"testopeninference: recorded {spans_dir / 'embeddings-basic.json'} (* s)",
                                 "testopeninference: 1 golden(s) recorded in * s"])
    again = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--record-spans")
    assert "testopeninference: recorded" not in again.stdout.str()  # nothing missing: silent


def test_record_spans_all_rerecords_goldens_used(pytester: pytest.Pytester, spans_dir: Path):
    (spans_dir / "embeddings-basic.json").write_text('{"name": "Stale"}\n')
    pytester.makepyfile(GOLDEN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--record-spans=all")
    result.assert_outcomes(passed=1)
    assert (spans_dir / "embeddings-basic.json").read_bytes() == (SPANS / "embeddings-basic.json").read_bytes()


def test_stale_goldens_are_reported_at_the_end(pytester: pytest.Pytester, spans_dir: Path, tmp_path: Path,
                                               monkeypatch):
    cassettes = tmp_path / "cassettes"
    shutil.copytree(CASSETTES, cassettes)
    pytester.makepyfile(GOLDEN_TEST)
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(cassettes))
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--record-spans").assert_outcomes(passed=1)
    path = cassettes / "embeddings-basic.yaml"
    path.write_text(path.read_text().replace("description: ", "description: Changed. "))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*testopeninference: stale golden spans*",
        "*embeddings-basic (its cassette changed)",
        "*testopeninference record --force NAME*",
    ])


def test_a_broken_cassette_is_only_noted_at_the_end(pytester: pytest.Pytester, spans_dir: Path, tmp_path: Path,
                                                   monkeypatch):
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    (cassettes / "chat-broken.yaml").write_text("version: 2\ninteractions: [\n")
    shutil.copy(CASSETTES / "embeddings-basic.yaml", cassettes)
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(cassettes))
    shutil.copy(SPANS / "embeddings-basic.json", spans_dir)
    pytester.makepyfile(GOLDEN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*testopeninference: could not check goldens for staleness*",
        f"  {cassettes / 'chat-broken.yaml'}:3: malformed cassette YAML (*); fix or delete the file.",
    ])


def test_fixtures_serve_and_collect(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(
        """
        import httpx
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        def test_fake_openai(fake_openai):
            cassette = fake_openai.cassette("chat-basic")
            reply = httpx.post(fake_openai.base_url + "/chat/completions", content=cassette.request.body,
                               headers={"X-Cassette-Name": "chat-basic", "Content-Type": "application/json"})
            assert reply.status_code == 200
            assert fake_openai.requests("chat-basic")[0].headers["x-cassette-name"] == "chat-basic"

        def test_collector_first(otlp_collector):
            provider = TracerProvider()
            exporter = OTLPSpanExporter(endpoint=otlp_collector.endpoint + "/v1/traces")
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            provider.get_tracer("gateway").start_span("route").end()
            (item,) = otlp_collector.wait_for_spans(name="route", scope="gateway", timeout=5)
            assert item.span.name == "route"

        def test_collector_is_cleared_between_tests(otlp_collector):
            assert otlp_collector.spans() == []
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_the_collector_fixture_receives_otlp_grpc_unless_the_setting_turns_it_off(
    pytester: pytest.Pytester, spans_dir: Path, monkeypatch
):
    pytester.makepyfile(
        """
        import os

        import pytest
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        def test_grpc(otlp_collector):
            if os.environ.get("TESTOPENINFERENCE_GRPC") == "false":
                with pytest.raises(RuntimeError, match="gRPC receiver is off"):
                    otlp_collector.grpc_endpoint
                return
            assert otlp_collector.grpc_endpoint.startswith("http://127.0.0.1:")
            provider = TracerProvider()
            exporter = OTLPSpanExporter(endpoint=otlp_collector.grpc_endpoint, insecure=True)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            provider.get_tracer("gateway").start_span("over grpc").end()
            provider.shutdown()
            (item,) = otlp_collector.wait_for_spans(name="over grpc", scope="gateway", timeout=5)
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    monkeypatch.setenv("TESTOPENINFERENCE_GRPC", "false")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_waiting_for_spans_that_never_come_says_what_arrived(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(
        """
        def test_nothing(otlp_collector):
            otlp_collector.wait_for_spans(name="ChatCompletion", timeout=0.2)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SpanTimeoutError: expected 1 span(s) (name='ChatCompletion'*spans received: none*"])


def test_span_convention_option_chooses_the_goldens(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.delenv("TESTOPENINFERENCE_SPANS_DIR", raising=False)
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(CASSETTES))
    pytester.makepyfile(
        """
        from testopeninference import get_log_records, get_span

        def test_convention(golden_span):
            assert get_span("chat-basic").name == "chat gpt-4.1-nano"
            assert golden_span("chat-basic").name == "chat gpt-4.1-nano"
            assert golden_span("chat-basic", convention="openinference").name == "ChatCompletion"
            assert get_log_records("chat-basic")[0].event_name == "gen_ai.client.inference.operation.details"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--span-convention", "otel-genai-events")
    result.assert_outcomes(passed=1)


def test_a_bad_project_table_is_one_usage_error_not_an_internal_error(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.delenv("TESTOPENINFERENCE_SPANS_DIR", raising=False)
    pytester.makefile(".toml", pyproject='[tool.testopeninference]\nspan-dir = "tests/spans"\n')
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*testopeninference: *pyproject.toml: unknown key 'span-dir'*valid keys:*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


GATEWAY_TEST = """
import json
import httpx

from testopeninference.recorder.cassette import load_cassette

def send(fake_openai, body_changes, header=True):
    body = {**fake_openai.cassette("chat-basic").request.json(), **body_changes}
    headers = {"X-Cassette-Name": "chat-basic"} if header else {}
    return httpx.post(f"{fake_openai.base_url}/chat/completions", json=body, headers=headers, timeout=10)

def test_clean(fake_openai):
    assert send(fake_openai, {}).status_code == 200
"""

REFUSED_TEST = """
def test_refused(fake_openai):
    assert send(fake_openai, {"stream": False}).status_code == 409
"""

TOLERATED_TEST = """
def test_named_and_tolerated(fake_openai):
    assert send(fake_openai, {"stream": False, "user": "gateway"}).status_code == 200

def test_unnamed_and_tolerated(fake_openai):
    assert send(fake_openai, {"stream": False, "user": "gateway"}, header=False).status_code == 200
    assert len(fake_openai.requests("chat-basic")) == 3  # test_clean's, the named one and this one
"""


def test_fake_openai_fixture_fails_a_test_whose_request_was_refused(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(GATEWAY_TEST + REFUSED_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_refused*",
        "*the fake OpenAI server refused 1 request(s) during this test:",
        "*POST /v1/chat/completions -> 409 (cassette chat-basic): request does not match cassette *chat-basic.yaml: "
        "body: stream not in cassette (request false). The gateway changed the request.*"
        'ignore_body_keys=?"stream"?*',
    ])
    assert "ERROR at teardown of test_clean" not in result.stdout.str()


MISMATCH_AFTER_A_REFUSAL = """
from testopeninference import SpanMismatchError

def test_mismatch(fake_openai):
    send(fake_openai, {"stream": False})  # refused: the gateway's span then differs from the golden
    raise SpanMismatchError("span differs from golden chat-basic.json (11 differences)")
"""


def test_a_failure_after_a_refusal_quotes_the_refusal_as_its_likely_cause(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(GATEWAY_TEST + MISMATCH_AFTER_A_REFUSAL)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*_ test_mismatch _*",
        "*SpanMismatchError*",
        "*testopeninference*",
        "the fake OpenAI server refused 1 request(s) during this test, the likely cause of this failure (the gateway "
        "changed the request; fix that first):",
        "*POST /v1/chat/completions -> 409 (cassette chat-basic): *body: stream not in cassette*",
    ])


def test_fake_openai_fixture_tolerates_keys_from_pyproject_ini_and_command_line(
    pytester: pytest.Pytester, spans_dir: Path
):
    pytester.makepyprojecttoml('[tool.testopeninference]\nignore-body-keys = ["stream"]\n'
                               '[tool.pytest.ini_options]\ntestopeninference_ignore_body_keys = ["stream_options"]\n')
    pytester.makepyfile(GATEWAY_TEST + TOLERATED_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ignore-body-key", "user")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["testopeninference: request body keys the fake OpenAI server tolerated: stream, stream_options, user"]
    )


def test_a_malformed_ignore_body_key_is_a_usage_error(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(GATEWAY_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ignore-body-key", "tools..strict")
    result.stderr.fnmatch_lines(["*testopeninference: ignore_body_keys: 'tools..strict' is not a dotted key path*"])
    assert result.ret != 0


def test_a_session_scoped_gateway_uses_the_session_collector_and_tests_select_by_trace(pytester: pytest.Pytester,
                                                                                       spans_dir: Path):
    pytester.makepyfile(
        """
        import pytest
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry import trace

        @pytest.fixture(scope="session")
        def gateway_tracer(otlp_collector_session):
            provider = TracerProvider()
            exporter = OTLPSpanExporter(endpoint=otlp_collector_session.endpoint + "/v1/traces")
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            yield provider.get_tracer("gateway")
            provider.shutdown()

        @pytest.mark.parametrize("run", [1, 2])
        def test_one_request(gateway_tracer, otlp_collector_session, run):
            with gateway_tracer.start_as_current_span("GET /health", context=trace.set_span_in_context(
                    trace.INVALID_SPAN)):
                pass
            with gateway_tracer.start_as_current_span("route") as span:
                trace_id = format(span.get_span_context().trace_id, "032x")
            (item,) = otlp_collector_session.wait_for_spans(name="route", trace_id=trace_id, timeout=5)
            assert len(otlp_collector_session.spans(name="route")) == run  # the session collector is never emptied
            assert {s.span.name for s in otlp_collector_session.unrelated_spans()} >= {"GET /health"}
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_options_reach_the_settings_without_touching_the_environment(pytester: pytest.Pytester, spans_dir: Path):
    pytester.makepyfile(
        """
        import os
        from testopeninference.recorder.config import RecordMode

        def test_settings(span_settings):
            assert span_settings.record_mode is RecordMode.ALL
            assert span_settings.convention == "otel-genai"
            assert "RECORD_SPANS" not in os.environ
            assert "TESTOPENINFERENCE_CONVENTION" not in os.environ
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--record-spans=all",
                                           "--span-convention", "otel-genai")
    result.assert_outcomes(passed=1)


def test_record_spans_from_the_environment_still_records(pytester: pytest.Pytester, spans_dir: Path, monkeypatch):
    monkeypatch.setenv("RECORD_SPANS", "true")
    pytester.makepyfile(GOLDEN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert (spans_dir / "embeddings-basic.json").read_bytes() == (SPANS / "embeddings-basic.json").read_bytes()


REFUSED_AT_START_UP = """
import httpx
import pytest

@pytest.fixture(scope="session")
def gateway(fake_openai):
    # a gateway whose start-up request the fake server refuses (set up before any per-test fixture)
    httpx.post(f"{fake_openai.base_url}/chat/completions", json={"model": "no-such-cassette"}, timeout=10)
    yield

def test_first(gateway):
    pass

def test_second(gateway):
    pass
"""


def test_a_refusal_while_a_session_fixture_starts_fails_the_first_test_using_it(pytester: pytest.Pytester,
                                                                                 spans_dir: Path):
    pytester.makepyfile(REFUSED_AT_START_UP)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_first*",
        "*the fake OpenAI server refused 1 request(s) during this test:",
        "*POST /v1/chat/completions -> 400 (cassette none): no X-Cassette-Name header and no cassette*",
    ])

"""Example: testing a gateway's spans against the goldens, with a gateway started once per session.

This is the pattern a gateway author copies. The gateway under test is
``examples/gateway/gateway.py``, a real process that behaves like real
gateways: it serves the OpenAI API under ``/openai/v1``, names models
``gw::<model>``, exports three spans per request (server, routing, LLM) and a
health-check span of its own. It is started once, with

- its upstream at the ``fake_openai`` fixture (``fake_openai.base_url``), and
- its OTLP endpoint at the ``otlp_collector_session`` fixture (``.endpoint``).

Each test sends a cassette in a trace of its own (``send_cassette`` returns
its ``trace_id``), picks THE LLM span of that trace with ``llm_span`` and
compares it with the golden as a gateway's span (``gateway=True``).

The gateway behaves as it would in production: it drops ``X-Cassette-Name``
(the fake server attributes each request by a unique body match) and adds
``"stream": false`` (tolerated by name). In a gateway's own repository that is
``ignore-body-keys = ["stream"]`` in ``[tool.testopeninference]``; here, where
one pyproject serves every test, this module defines its own session-scoped
``fake_openai`` with ``ignore_body_keys=["stream"]``: the plugin's refusal
check and its summary of tolerated keys use it like the plugin's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from testopeninference import SpanMismatchError, assert_span_equal, compare_spans
from testopeninference.errors import SpanSelectionError
from testopeninference.kit import FakeOpenAI, prefix_model, send_cassette
from testopeninference.recorder.config import Settings
from testopeninference.trace_context import assert_trace_propagated, new_traceparent, trace_problems
from tests.helpers import PROJECT
from tests.integration.example_gateway import GATEWAY, running_gateway

CASSETTES = ["chat-basic", "chat-streaming", "chat-tools", "chat-bad-request", "completion-basic", "embeddings-basic"]
TOLERATED = ["stream"]  # the gateway adds "stream": false
THROUGH_THE_GATEWAY = dict(path_prefix="/openai", adapt=prefix_model("gw::"))


@pytest.fixture(scope="session")
def fake_openai(span_settings: Settings):
    """This module's upstream: the plugin's fixture, tolerating the ``"stream": false`` the gateway adds."""
    server = FakeOpenAI(*span_settings.cassette_dirs, ignore_body_keys=TOLERATED).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(fake_openai, otlp_collector_session):
    with running_gateway(fake_openai.base_url, otlp_collector_session.endpoint) as url:
        yield url


@pytest.mark.parametrize("cassette", CASSETTES)
def test_gateway_llm_span_matches_golden(gateway, fake_openai, otlp_collector_session, golden_span, cassette):
    reply = send_cassette(gateway, fake_openai.cassette(cassette), **THROUGH_THE_GATEWAY)
    exported = otlp_collector_session.llm_span(reply.trace_id)
    assert_span_equal(golden_span(cassette), exported.span, gateway=True, golden=cassette)


def test_each_request_is_three_spans_in_the_callers_trace_and_health_checks_are_kept_apart(
        gateway, fake_openai, otlp_collector_session):
    reply = send_cassette(gateway, fake_openai.cassette("chat-basic"), **THROUGH_THE_GATEWAY)
    spans = otlp_collector_session.wait_for_spans(3, trace_id=reply.trace_id)
    kinds = sorted((Span.SpanKind.Name(item.span.kind), item.span.name) for item in spans)
    assert kinds == [("SPAN_KIND_INTERNAL", "ChatCompletion"), ("SPAN_KIND_INTERNAL", "route"),
                     ("SPAN_KIND_SERVER", "POST /openai/v1/chat/completions")]
    unrelated = otlp_collector_session.unrelated_spans()
    # the fixture's readiness probe, and the gateway's model listing at start-up
    assert {"GET /health", "AsyncPage[Model]"} <= {item.span.name for item in unrelated}
    assert reply.trace_id not in {item.span.trace_id.hex() for item in unrelated}


def test_send_cassette_sends_a_fresh_trace_each_time(gateway, fake_openai, otlp_collector_session):
    first, second = (send_cassette(gateway, fake_openai.cassette("embeddings-basic"), **THROUGH_THE_GATEWAY)
                     for _ in range(2))
    assert first.trace_id != second.trace_id
    assert first.traceparent.split("-")[1] == first.trace_id
    assert otlp_collector_session.llm_span(first.trace_id).span.trace_id.hex() == first.trace_id
    assert otlp_collector_session.llm_span(second.trace_id).span.trace_id.hex() == second.trace_id


def test_adapt_renames_the_model_and_the_cassette_still_answers(gateway, fake_openai, otlp_collector_session):
    cassette = fake_openai.cassette("chat-basic")
    reply = send_cassette(gateway, cassette, **THROUGH_THE_GATEWAY)
    assert reply.status == cassette.interactions[0].response.code
    route = otlp_collector_session.llm_span(reply.trace_id, name="route").span
    attributes = {a.key: a.value.string_value for a in route.attributes}
    model = cassette.request.json()["model"]
    assert attributes["gateway.requested_model"] == f"gw::{model}"  # what send_cassette sent
    assert json.loads(fake_openai.requests("chat-basic")[-1].body)["model"] == model  # what the gateway sent upstream


def test_without_the_header_each_request_is_attributed_by_its_body_and_stream_false_is_tolerated(
        gateway, fake_openai, otlp_collector_session):
    for name in ("chat-basic", "chat-streaming", "embeddings-basic"):
        before = len(fake_openai.requests(name))
        reply = send_cassette(gateway, fake_openai.cassette(name), **THROUGH_THE_GATEWAY)
        assert reply.status == 200, reply.body
        upstream = fake_openai.requests(name)[-1]
        assert len(fake_openai.requests(name)) == before + 1
        assert "x-cassette-name" not in upstream.headers  # the gateway dropped it
        assert upstream.cassette == name
    assert json.loads(fake_openai.requests("chat-basic")[-1].body)["stream"] is False  # the gateway added it
    assert fake_openai.ignore_body_keys == ("stream",)
    assert fake_openai.errors() == []


def test_the_gateway_lists_the_upstreams_models_at_start_up_and_serves_them(gateway, fake_openai):
    at_start_up = [r for r in fake_openai.requests() if (r.method, r.path) == ("GET", "/v1/models")]
    assert at_start_up and at_start_up[0].cassette is None  # answered from the cassettes' models, no cassette
    listing = httpx.get(f"{gateway}/openai/v1/models", timeout=10)
    assert listing.status_code == 200, listing.text
    model = fake_openai.cassette("chat-basic").request.json()["model"]
    assert model in {item["id"] for item in listing.json()["data"]}
    one = httpx.get(f"{gateway}/openai/v1/models/gw::{model}", timeout=10)
    assert (one.status_code, one.json()["id"]) == (200, model)
    unknown = httpx.get(f"{gateway}/openai/v1/models/gw::no-such-model", timeout=10)
    assert unknown.status_code == 404 and "no-such-model" in unknown.json()["error"]["message"]
    direct = httpx.get(f"{fake_openai.base_url}/models", timeout=10)  # what the gateway's upstream client saw
    assert (len(direct.headers.get_list("date")), len(direct.headers.get_list("server"))) == (1, 1)


def test_without_the_path_prefix_the_gateway_has_no_route(gateway, fake_openai):
    reply = send_cassette(gateway, fake_openai.cassette("chat-basic"), adapt=prefix_model("gw::"))
    assert reply.status == 404


def test_trace_is_kept_through_the_gateways_server_span(gateway, fake_openai, otlp_collector_session):
    caller = new_traceparent()
    reply = send_cassette(gateway, fake_openai.cassette("chat-basic"), traceparent=caller, **THROUGH_THE_GATEWAY)
    assert reply.trace_id == caller.trace_id
    exported = otlp_collector_session.llm_span(caller.trace_id)
    trace = otlp_collector_session.wait_for_spans(3, trace_id=caller.trace_id)
    upstream = fake_openai.requests("chat-basic")[-1]
    assert exported.span.parent_span_id.hex() != caller.span_id  # a grandchild, not a child
    assert_trace_propagated(caller, exported, upstream.headers, trace)


def test_trace_check_names_the_missing_link(gateway, fake_openai, otlp_collector_session):
    reply = send_cassette(gateway, fake_openai.cassette("chat-basic"), **THROUGH_THE_GATEWAY)
    caller = new_traceparent()
    caller = type(caller)(reply.trace_id, reply.traceparent.split("-")[2])
    exported = otlp_collector_session.llm_span(reply.trace_id)
    trace = otlp_collector_session.wait_for_spans(3, trace_id=reply.trace_id)
    server = next(item for item in trace if item.span.name.startswith("POST "))
    upstream = fake_openai.requests("chat-basic")[-1].headers
    without_server = [item for item in trace if item is not server]
    (problem,) = trace_problems(caller, exported, upstream, without_server)
    assert problem == (
        f"span 'ChatCompletion''s parent {server.span.span_id.hex()} was not received in trace {reply.trace_id}, "
        f"so the chain 'ChatCompletion' ({exported.span.span_id.hex()}) never reached the caller's span "
        f"{caller.span_id}")
    assert trace_problems(new_traceparent(), exported, upstream, trace)[0].startswith("the gateway's span is in trace ")


def test_trace_check_catches_a_gateway_that_does_not_propagate(fake_openai, otlp_collector_session):
    with running_gateway(fake_openai.base_url, otlp_collector_session.endpoint, "--no-propagate") as url:
        reply = send_cassette(url, fake_openai.cassette("chat-basic"), **THROUGH_THE_GATEWAY)
        exported = otlp_collector_session.llm_span(reply.trace_id)
        trace = otlp_collector_session.wait_for_spans(3, trace_id=reply.trace_id)
    caller = type(new_traceparent())(reply.trace_id, reply.traceparent.split("-")[2])
    upstream = fake_openai.requests("chat-basic")[-1].headers
    assert trace_problems(caller, exported, upstream, trace) == [
        "the request the gateway sent upstream carries no valid traceparent header"
    ]


def test_llm_span_with_no_candidate_lists_the_trace(gateway, fake_openai, otlp_collector_session):
    reply = send_cassette(gateway, fake_openai.cassette("embeddings-basic"), **THROUGH_THE_GATEWAY)
    otlp_collector_session.wait_for_spans(3, trace_id=reply.trace_id)
    with pytest.raises(SpanSelectionError) as raised:
        otlp_collector_session.llm_span(reply.trace_id, name="no-such-span", timeout=0.2)
    message = str(raised.value)
    assert f"expected exactly one span named 'no-such-span' in trace {reply.trace_id}, found none" in message
    assert "'CreateEmbeddings' kind=SPAN_KIND_INTERNAL scope=openinference.instrumentation.openai" in message
    assert "'POST /openai/v1/embeddings' kind=SPAN_KIND_SERVER scope=example.gateway" in message
    # the gateway's start-up model listing and its health checks, each in a trace of its own
    assert "arrived outside the traces sent (kept apart): AsyncPage[Model], GET /health" in message


def test_a_wrong_path_prefix_names_the_gateways_404_and_the_url_instead_of_waiting_for_a_span(
        gateway, fake_openai, otlp_collector_session):
    reply = send_cassette(gateway, fake_openai.cassette("chat-basic"), path_prefix="/v1", adapt=prefix_model("gw::"))
    assert (reply.status, reply.url) == (404, f"{gateway}/v1/v1/chat/completions")
    with pytest.raises(SpanSelectionError) as raised:
        otlp_collector_session.llm_span(reply.trace_id, timeout=600)  # no wait: an unrouted request has no span
    assert (f"found none; the trace holds:" in str(raised.value)
            and f"the gateway answered 404 to POST {gateway}/v1/v1/chat/completions (the cassette recorded 200); "
            "is path_prefix= (--path-prefix) the gateway's route?: fix the request first" in str(raised.value))


def test_gateway_exporting_over_grpc(fake_openai, otlp_collector_session, golden_span):
    endpoint = otlp_collector_session.grpc_endpoint
    assert endpoint is not None and endpoint.startswith("http://127.0.0.1:")
    with running_gateway(fake_openai.base_url, endpoint, protocol="grpc") as url:
        reply = send_cassette(url, fake_openai.cassette("chat-basic"), **THROUGH_THE_GATEWAY)
        exported = otlp_collector_session.llm_span(reply.trace_id)
        assert len(otlp_collector_session.wait_for_spans(3, trace_id=reply.trace_id)) == 3
    assert_span_equal(golden_span("chat-basic"), exported.span, gateway=True, golden="chat-basic")


def test_a_gateway_naming_the_llm_span_its_own_way_gets_a_note_not_a_difference(
        fake_openai, otlp_collector_session, golden_span):
    with running_gateway(fake_openai.base_url, otlp_collector_session.endpoint, "--llm-span-name", "llm call") as url:
        reply = send_cassette(url, fake_openai.cassette("chat-basic"), **THROUGH_THE_GATEWAY)
        exported = otlp_collector_session.llm_span(reply.trace_id)  # picked by its span kind, whatever its name
    golden = golden_span("chat-basic")
    found = compare_spans(golden, exported.span, gateway=True)
    assert (found.differences, found.notes) == ([], ["name: expected 'ChatCompletion', got 'llm call' (not compared)"])
    assert_span_equal(golden, exported.span, gateway=True)
    with pytest.raises(SpanMismatchError, match="name: expected 'ChatCompletion', got 'llm call'"):
        assert_span_equal(golden, exported.span, golden="chat-basic")  # a recording's comparison: names count


def test_a_gateway_error_compares_by_http_status_whoever_worded_it_and_full_shows_values_whole(
        gateway, fake_openai, otlp_collector_session, golden_span):
    reply = send_cassette(gateway, fake_openai.cassette("chat-bad-request"), **THROUGH_THE_GATEWAY)
    assert reply.status == 400
    exported = otlp_collector_session.llm_span(reply.trace_id)
    golden = golden_span("chat-bad-request")
    assert exported.span.status.code == Status.STATUS_CODE_ERROR
    assert compare_spans(golden, exported.span, gateway=True).differences == []
    (server,) = otlp_collector_session.spans(name="POST /openai/v1/chat/completions", trace_id=reply.trace_id)
    assert server.span.status.message == "upstream returned 400: invalid_request_error"  # the gateway's words
    reworded = Span()
    reworded.CopyFrom(exported.span)
    reworded.status.message = server.span.status.message
    assert compare_spans(golden, reworded, gateway=True).differences == []  # the same 400
    reworded.status.message = "upstream returned 404: not_found"
    assert compare_spans(golden, reworded, gateway=True).differences[0].startswith("status.message")

    other = golden_span("chat-multiturn")
    short = compare_spans(other, exported.span, gateway=True).differences
    whole = compare_spans(other, exported.span, gateway=True, full=True).differences
    (event,) = exported.span.events
    message = next(a.value.string_value for a in event.attributes if a.key == "exception.message")
    events_line = 'events: expected none, got 1: exception BadRequestError: "{}"'
    assert events_line.format(message) in whole  # named, with the exception's type and whole message
    assert events_line.format(message) not in short and events_line.format(message[:55]).rstrip('"') in short[-1]


def test_serve_save_spans_send_and_diff_as_processes_on_a_span_the_gateway_exported(tmp_path: Path):
    saved = tmp_path / "saved"
    serve = subprocess.Popen(
        [sys.executable, "-m", "testopeninference", "serve", "--openai-port", "0", "--otlp-port", "0",
         "--grpc-port", "0", "--save-spans", str(saved), "--ignore-body-key", "stream", "--seconds", "120"],
        cwd=PROJECT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        heading = []
        while not heading or heading[-1] not in ("Ctrl-C to stop.\n", ""):
            heading.append(serve.stdout.readline())
        addresses = {line[:19].strip(): line[20:].split()[0] for line in heading if line[19:20] == " "}
        assert addresses["tolerated body keys"] == "stream", heading
        with running_gateway(addresses["fake OpenAI server"], addresses["OTLP/gRPC receiver"], protocol="grpc") as url:
            sent = subprocess.run([sys.executable, "-m", "testopeninference", "send", "chat-basic", "--gateway", url,
                                   "--path-prefix", "/openai", "--model-prefix", "gw::"],
                                  cwd=PROJECT, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent
        lines = sent.stdout.splitlines()
        assert lines[0] == "status      200 (the cassette's: 200)", sent.stdout
        trace_id = lines[1].removeprefix("trace id    ")
        assert json.loads("\n".join(lines[3:]))["object"] == "chat.completion"
        span_file = saved / f"{trace_id}-ChatCompletion.json"
        for _ in range(400):
            if span_file.exists() or serve.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        serve.send_signal(signal.SIGINT)
        out, err = serve.communicate(timeout=30)
    assert span_file.exists(), (heading, out, err)
    assert sum(path.name.startswith(trace_id) for path in saved.iterdir()) == 3, sorted(saved.iterdir())
    same = subprocess.run([sys.executable, "-m", "testopeninference", "diff", "--gateway", "chat-basic",
                           str(span_file)], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert (same.returncode, same.stdout.splitlines()[-1]) == (0, "spans match"), same
    other = subprocess.run([sys.executable, "-m", "testopeninference", "diff", "--gateway", "chat-multiturn",
                            str(span_file)], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert other.returncode == 1, other


def test_the_gateway_dies_with_the_process_that_started_it(fake_openai, otlp_collector_session):
    if not sys.platform.startswith("linux"):
        pytest.skip("the gateway watches its parent with prctl(PR_SET_PDEATHSIG), which is Linux's")
    starter = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\n"
         "child = subprocess.Popen([sys.executable, *sys.argv[1:]])\n"
         "print(child.pid, flush=True)\ntime.sleep(120)\n",
         str(GATEWAY), "--port", "0"],
        env={**os.environ, "OPENAI_BASE_URL": fake_openai.base_url,
             "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_collector_session.endpoint},
        stdout=subprocess.PIPE,
    )
    try:
        gateway_pid = int(starter.stdout.readline())
        assert _alive(gateway_pid)
    finally:
        starter.kill()
        starter.wait(timeout=10)
        starter.stdout.close()
    deadline = time.monotonic() + 30
    while _alive(gateway_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(gateway_pid), f"the gateway (pid {gateway_pid}) outlived the process that started it"


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


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
        from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

        def test_spans():
            assert Span(name="ChatCompletion") == Span(name="Completion")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*spans differ:*", "*name: expected 'ChatCompletion', got 'Completion'"])


GATEWAY_SESSION = """
import dataclasses

import pytest
from testopeninference import assert_span_equal
from testopeninference.kit import prefix_model, send_cassette
from tests.integration.example_gateway import running_gateway

THROUGH_THE_GATEWAY = dict(path_prefix="/openai", adapt=prefix_model("gw::"))

@pytest.fixture(scope="session")
def gateway(fake_openai, otlp_collector_session):
    with running_gateway(fake_openai.base_url, otlp_collector_session.endpoint) as url:
        yield url

def test_tolerated(gateway, fake_openai, otlp_collector_session, golden_span):
    reply = send_cassette(gateway, fake_openai.cassette("chat-basic"), **THROUGH_THE_GATEWAY)
    exported = otlp_collector_session.llm_span(reply.trace_id)
    assert_span_equal(golden_span("chat-basic"), exported.span, gateway=True)

def test_refused(gateway, fake_openai):
    def warmer(request):
        request = prefix_model("gw::")(request)
        return dataclasses.replace(request, body={**request.body, "temperature": 0.5})

    reply = send_cassette(gateway, fake_openai.cassette("chat-basic"), path_prefix="/openai", adapt=warmer)
    assert reply.status == 400
    (refused,) = fake_openai.errors()
    assert (refused.cassette, refused.status, refused.body_keys) == (None, 400, ("temperature",))
    assert "The gateway changed the request" in refused.reason
"""


def test_a_request_the_gateway_changed_fails_the_test_quoting_the_refusal_and_picks_are_reported(
        pytester: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(PROJECT / "cassettes"))
    monkeypatch.setenv("TESTOPENINFERENCE_SPANS_DIR", str(PROJECT / "spans"))
    monkeypatch.setenv("PYTHONPATH", str(PROJECT))
    monkeypatch.delenv("RECORD_SPANS", raising=False)
    pytester.makepyfile(GATEWAY_SESSION)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--ignore-body-key", "stream")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_refused*",
        "*the fake OpenAI server refused 1 request(s) during this test:",
        "*POST /v1/chat/completions -> 400 (cassette none): no X-Cassette-Name header and no cassette in * matches "
        "POST /v1/chat/completions. The closest is chat-basic (*chat-basic.yaml): body: temperature not in cassette "
        "(request 0.5). The gateway changed the request. If the change is harmless, tolerate it with "
        'ignore_body_keys=?"temperature"?*',
    ])
    result.stdout.fnmatch_lines([
        "*PASSES*",
        "*test_tolerated*",
        "*- testopeninference -*",
        "trace *: picked 'ChatCompletion' scope=openinference.instrumentation.openai kind=SPAN_KIND_INTERNAL "
        "by openinference.span.kind=LLM; 2 other span(s) of the trace received",
    ])
    result.stdout.fnmatch_lines(["testopeninference: request body keys the fake OpenAI server tolerated: stream"])

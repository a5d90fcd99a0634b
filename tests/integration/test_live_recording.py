"""Recording missing cassettes from a live API, against a stand-in upstream on loopback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from testopeninference.recorder.cassette import CassetteLibrary, load_cassette
from testopeninference.recorder.config import Settings, Upstream
from testopeninference.recorder.fake_openai import CassetteReplayer
from testopeninference.recorder.live import LiveRecorder
from testopeninference.recorder.matchers import IncomingRequest
from testopeninference.recorder.session import SpanRecorder
from testopeninference.recorder.span_file import read_span
from tests.helpers import CASSETTES
from tests.standin_upstream import CHAT_ANSWER, SPEECH_AUDIO, StandinUpstream

FAKE_KEY = "sk-proj-FAKEKEYFORTESTS0123456789abcdefABCDEF"
CHAT_BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "Say hi."}]}


@pytest.fixture
def upstream():
    with StandinUpstream() as running:
        yield running


def chat_request(name: str, body: dict = CHAT_BODY) -> IncomingRequest:
    headers = {"content-type": "application/json", "x-cassette-name": name, "cookie": "session=browser"}
    return IncomingRequest("POST", "/v1/chat/completions", headers, json.dumps(body).encode())


def replayer_for(tmp_path: Path, upstream: StandinUpstream) -> CassetteReplayer:
    library = CassetteLibrary(tmp_path)
    live = LiveRecorder(Upstream(openai_api_key=FAKE_KEY, openai_base_url=f"{upstream.url}/v1"), library)
    return CassetteReplayer(library, on_missing=live.record)


def test_missing_cassette_is_recorded_scrubbed_and_then_replayed(tmp_path: Path, upstream: StandinUpstream):
    replayer = replayer_for(tmp_path, upstream)
    response = replayer.handle(chat_request("chat-new"))
    assert response.status == 200
    assert json.loads(b"".join(response.chunks)) == CHAT_ANSWER
    path, headers, _ = upstream.received[0]
    assert path == "/v1/chat/completions" and headers["authorization"] == f"Bearer {FAKE_KEY}"

    text = (tmp_path / "chat-new.yaml").read_text()
    for secret in (FAKE_KEY, "secretcookie", "org-standinsecret", "proj_standinsecret", "session=browser"):
        assert secret not in text
    assert "Content-Encoding" not in text
    cassette = load_cassette(tmp_path / "chat-new.yaml")
    recorded = cassette.interactions[0]
    assert recorded.response.body == json.dumps(CHAT_ANSWER, indent=2, sort_keys=True)
    assert recorded.request.json() == CHAT_BODY
    assert recorded.response.headers["X-Request-Id"] == ["req_standin"]

    again = replayer.handle(chat_request("chat-new"))
    assert json.loads(b"".join(again.chunks)) == CHAT_ANSWER
    assert len(upstream.received) == 1  # replayed, not recorded twice


def test_streams_are_recorded_and_replayed_event_by_event(tmp_path: Path, upstream: StandinUpstream):
    replayer = replayer_for(tmp_path, upstream)
    response = replayer.handle(chat_request("chat-new-stream", {**CHAT_BODY, "stream": True}))
    assert response.streamed and response.chunks[-1] == b"data: [DONE]\n\n"
    assert len(response.chunks) == 4
    assert load_cassette(tmp_path / "chat-new-stream.yaml").interactions[0].response.is_event_stream


def test_drift_is_an_error_and_never_rewrites_the_cassette(tmp_path: Path, upstream: StandinUpstream):
    shutil.copy(CASSETTES / "chat-basic.yaml", tmp_path)
    before = (tmp_path / "chat-basic.yaml").read_bytes()
    response = replayer_for(tmp_path, upstream).handle(chat_request("chat-basic", {**CHAT_BODY, "seed": 1}))
    assert response.status == 409
    message = json.loads(b"".join(response.chunks))["error"]["message"]
    assert "chat-basic.yaml" in message and "seed not in cassette" in message
    assert (tmp_path / "chat-basic.yaml").read_bytes() == before
    assert upstream.received == []


def test_azure_requests_use_the_azure_key_and_hide_the_resource(tmp_path: Path, upstream: StandinUpstream):
    library = CassetteLibrary(tmp_path)
    settings = Upstream(azure_api_key=FAKE_KEY, azure_endpoint=upstream.url, azure_deployment="my-deploy",
                        api_version="2024-10-21")
    replayer = CassetteReplayer(library, on_missing=LiveRecorder(settings, library).record)
    request = IncomingRequest("POST", "/openai/deployments/gpt-4o-mini/chat/completions",
                              {"content-type": "application/json", "x-cassette-name": "azure-new"},
                              json.dumps(CHAT_BODY).encode(), query="api-version=2024-06-01")
    assert replayer.handle(request).status == 200
    path, headers, _ = upstream.received[0]
    assert path == "/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21"
    assert headers["api-key"] == FAKE_KEY
    text = (tmp_path / "azure-new.yaml").read_text()
    assert FAKE_KEY not in text and "api-key" not in text.lower()
    assert load_cassette(tmp_path / "azure-new.yaml").request.form["api-version"] == ["2024-10-21"]


def test_without_a_key_a_missing_cassette_is_a_500_that_says_how_to_record(tmp_path: Path):
    response = CassetteReplayer(CassetteLibrary(tmp_path)).handle(chat_request("chat-new"))
    assert response.status == 500
    assert "set OPENAI_API_KEY to record it" in json.loads(b"".join(response.chunks))["error"]["message"]


def test_new_cassette_and_golden_recorded_through_the_proxy(tmp_path: Path, upstream: StandinUpstream, capfd):
    settings = Settings(
        cassettes_dir=tmp_path / "cassettes",
        spans_dir=tmp_path / "spans",
        upstream=Upstream(openai_api_key=FAKE_KEY, openai_base_url=f"{upstream.url}/v1"),
    )
    with SpanRecorder(settings) as recorder:
        result = recorder.record_new("chat-mine", "/v1/chat/completions", json.dumps(CHAT_BODY), "My chat shape.")
        logs = recorder._backend.logs()  # noqa: SLF001
        first = result.path.read_bytes()
        assert recorder.record("chat-mine", force=True).path.read_bytes() == first
    cassette = load_cassette(tmp_path / "cassettes" / "chat-mine.yaml")
    assert cassette.description == "My chat shape."
    assert read_span(result.path).name == "ChatCompletion"
    assert len(upstream.received) == 1
    _, headers, _ = upstream.received[0]
    assert "traceparent" not in headers and "x-cassette-name" not in {k.lower() for k in headers}
    everything = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file()) + logs + "".join(capfd.readouterr())
    assert FAKE_KEY not in everything


def test_live_multipart_form_and_file_are_saved(tmp_path: Path, upstream: StandinUpstream):
    settings = Settings(
        cassettes_dir=tmp_path / "cassettes",
        spans_dir=tmp_path / "spans",
        upstream=Upstream(openai_api_key=FAKE_KEY, openai_base_url=f"{upstream.url}/v1"),
    )
    (tmp_path / "cassettes").mkdir()
    audio = load_cassette(CASSETTES / "audio-transcription-basic.yaml")
    with SpanRecorder(settings) as recorder:
        from testopeninference.recorder import request as proxy_request

        proxy_request.send_request(recorder._client, recorder._proxy_url, "audio-mine", audio.request,  # noqa: SLF001
                                   proxy_request.new_trace_id(), 30, audio.form_fields(), audio.form_files())
    saved = load_cassette(tmp_path / "cassettes" / "audio-mine.yaml")
    assert saved.request.body == "[multipart form data omitted]"
    assert saved.form_fields() == audio.form_fields()
    assert saved.form_files()["file"].read_bytes() == audio.form_files()["file"].read_bytes()


def test_cli_new_records_cassette_and_golden(tmp_path: Path, upstream: StandinUpstream, monkeypatch):
    from io import StringIO

    from testopeninference.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.url}/v1")
    body = tmp_path / "body.json"
    body.write_text(json.dumps(CHAT_BODY))
    out, err = StringIO(), StringIO()
    argv = ["new", "chat-cli", "--body", str(body), "--description", "From the CLI.",
            "--cassettes-dir", str(tmp_path / "c"), "--spans-dir", str(tmp_path / "s")]
    assert main(argv, out=out, err=err) == 0, err.getvalue()
    assert out.getvalue().count("recorded  ") == 2
    assert (tmp_path / "s" / "chat-cli.json").is_file()
    assert main(argv, out=out, err=err) == 1
    assert "already exists; delete it to record it again" in err.getvalue()


ANTHROPIC_KEY = "sk-ant-api03-FAKEKEYFORTESTS0123456789abcdef"
COHERE_KEY = "co-FAKEKEYFORTESTS0123456789abcdefABCDEF"
MESSAGES_BODY = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Say hi."}]}
RERANK_BODY = {"model": "rerank-v3.5", "query": "capital?", "documents": ["Paris is in France.", "Rome is old."]}


def provider_upstream(upstream: StandinUpstream) -> Upstream:
    """Anthropic's and Cohere's keys and base URLs (no /v1), both at the stand-in; no OpenAI key."""
    return Upstream(anthropic_api_key=ANTHROPIC_KEY, anthropic_base_url=upstream.url,
                    cohere_api_key=COHERE_KEY, cohere_base_url=upstream.url)


def test_new_anthropic_and_cohere_cassettes_are_recorded_scrubbed_with_goldens(
    tmp_path: Path, upstream: StandinUpstream, capfd
):
    settings = Settings(cassettes_dir=tmp_path / "cassettes", spans_dir=tmp_path / "spans",
                        upstream=provider_upstream(upstream))
    shapes = {"anthropic-mine": ("/v1/messages", MESSAGES_BODY, "messages.create"),
              "anthropic-mine-streaming": ("/v1/messages", {**MESSAGES_BODY, "stream": True}, "messages.create"),
              "cohere-mine": ("/v2/rerank", RERANK_BODY, "AsyncClientV2.rerank")}
    with SpanRecorder(settings) as recorder:
        for name, (path, body, _) in shapes.items():
            first = recorder.record_new(name, path, json.dumps(body), f"My {name}.").path.read_bytes()
            assert recorder.record(name, force=True).path.read_bytes() == first
        logs = recorder._backend.logs()  # noqa: SLF001
    for name, (_, _, span_name) in shapes.items():
        assert read_span(tmp_path / "spans" / f"{name}.json").name == span_name
    sent = {path: headers for path, headers, _ in upstream.received}
    assert sent["/v1/messages"]["x-api-key"] == ANTHROPIC_KEY and sent["/v1/messages"]["anthropic-version"]
    assert sent["/v2/rerank"]["authorization"] == f"Bearer {COHERE_KEY}"
    streamed = load_cassette(tmp_path / "cassettes" / "anthropic-mine-streaming.yaml").interactions[0]
    assert streamed.response.is_event_stream and streamed.response.body.startswith("event: message_start\ndata: ")
    assert streamed.request.headers["Anthropic-Version"] == [sent["/v1/messages"]["anthropic-version"]]  # the SDK's
    anthropic = load_cassette(tmp_path / "cassettes" / "anthropic-mine.yaml").interactions[0].response
    assert anthropic.headers["Anthropic-Ratelimit-Requests-Limit"] == ["4000"]
    assert anthropic.headers["Request-Id"] == ["req_standin"] and "Anthropic-Organization-Id" not in anthropic.headers
    everything = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file()) + logs + "".join(capfd.readouterr())
    for secret in (ANTHROPIC_KEY, COHERE_KEY, "org-anthropicsecret"):
        assert secret not in everything
    assert "x-api-key" not in everything.lower()


@pytest.mark.parametrize(("path", "variable"), [("/v1/messages", "ANTHROPIC_API_KEY"), ("/v2/rerank", "CO_API_KEY"),
                                                ("/v1/chat/completions", "OPENAI_API_KEY")])
def test_a_missing_provider_key_names_its_variable(tmp_path: Path, upstream: StandinUpstream, path: str,
                                                   variable: str):
    library = CassetteLibrary(tmp_path)
    only_others = {"/v1/messages": Upstream(openai_api_key=FAKE_KEY, cohere_api_key=COHERE_KEY),
                   "/v2/rerank": Upstream(openai_api_key=FAKE_KEY, anthropic_api_key=ANTHROPIC_KEY),
                   "/v1/chat/completions": Upstream(anthropic_api_key=ANTHROPIC_KEY)}[path]
    request = IncomingRequest("POST", path, {"content-type": "application/json", "x-cassette-name": "x-new"}, b"{}")
    live = LiveRecorder(only_others, library)
    for replayer, status in ((CassetteReplayer(library), 500), (CassetteReplayer(library, on_missing=live.record), 502)):
        response = replayer.handle(request)
        assert response.status == status  # no live API at all; a live API, but not this provider's
        assert f"set {variable} to record it" in json.loads(b"".join(response.chunks))["error"]["message"]
    assert upstream.received == [] and not (tmp_path / "x-new.yaml").exists()


def test_cli_new_without_the_provider_key_names_its_variable(tmp_path: Path, monkeypatch):
    from io import StringIO

    from testopeninference.cli import main

    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CO_API_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    body = tmp_path / "body.json"
    body.write_text(json.dumps(MESSAGES_BODY))
    out, err = StringIO(), StringIO()
    argv = ["new", "anthropic-cli", "--path", "/v1/messages", "--body", str(body),
            "--cassettes-dir", str(tmp_path / "c"), "--spans-dir", str(tmp_path / "s")]
    assert main(argv, out=out, err=err) == 1
    assert "set ANTHROPIC_API_KEY to record it from the live Anthropic API" in err.getvalue()


def test_a_binary_reply_is_stored_as_base64_and_replayed_as_sent(tmp_path: Path, upstream: StandinUpstream):
    replayer = replayer_for(tmp_path, upstream)
    body = {"model": "gpt-4o-mini-tts", "input": "Hi.", "voice": "alloy", "response_format": "wav"}
    request = IncomingRequest("POST", "/v1/audio/speech", {"content-type": "application/json",
                                                          "x-cassette-name": "speech-new"}, json.dumps(body).encode())
    assert b"".join(replayer.handle(request).chunks) == SPEECH_AUDIO
    response = load_cassette(tmp_path / "speech-new.yaml").interactions[0].response
    assert response.body_encoding == "base64" and response.body_bytes() == SPEECH_AUDIO
    assert b"".join(replayer.handle(request).chunks) == SPEECH_AUDIO and len(upstream.received) == 1

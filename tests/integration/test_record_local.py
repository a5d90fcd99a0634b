"""The whole pipeline on the local backend: fake server, proxy subprocess, collector, span files."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path

import pytest

from testopeninference.recorder.config import Settings
from testopeninference.recorder.session import SpanRecorder
from testopeninference.recorder.span_file import to_json
from testopeninference import get_span
from testopeninference.cli import main
from testopeninference.errors import GoldenSpanMissingError, ProxyError, RecordingError, VersionMismatchError
from tests.helpers import CASSETTES, SPANS

NAMES = sorted(path.stem for path in CASSETTES.glob("*.yaml"))


@pytest.mark.parametrize("name", NAMES)
def test_rerecording_gives_the_same_bytes(recorder: SpanRecorder, name: str):
    result = recorder.record(name)
    assert result.recorded
    assert result.path.read_bytes() == (SPANS / f"{name}.json").read_bytes()


def test_existing_golden_is_not_rerecorded_unless_forced(recorder: SpanRecorder):
    path = recorder.span_path("chat-basic")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("sentinel")
    assert recorder.record("chat-basic").recorded is False
    assert path.read_text() == "sentinel"
    assert recorder.record("chat-basic", force=True).recorded
    assert path.read_bytes() == (SPANS / "chat-basic.json").read_bytes()


def test_concurrent_requests_never_mix_up_spans(recorder: SpanRecorder):
    names = NAMES * 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        spans = list(pool.map(recorder.capture, names))
    for name, span in zip(names, spans):
        assert to_json(span) == (SPANS / f"{name}.json").read_text(), name


def test_a_dead_proxy_is_replaced_for_the_next_recording(recorder: SpanRecorder):
    recorder._backend._process.kill()  # noqa: SLF001 - simulating a crash
    recorder._backend._process.wait()  # noqa: SLF001
    assert to_json(recorder.capture("chat-basic")) == (SPANS / "chat-basic.json").read_text()


def test_request_drift_fails_and_writes_nothing(tmp_path: Path):
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    text = (CASSETTES / "chat-basic.yaml").read_text().replace('"model":', '"timeout": 30,\n              "model":', 1)
    (cassettes / "chat-drift.yaml").write_text(text)
    settings = Settings(cassettes_dir=cassettes, spans_dir=tmp_path / "spans")
    with SpanRecorder(settings) as recorder, pytest.raises(RecordingError) as raised:
        recorder.record("chat-drift")
    message = str(raised.value)
    assert "cassette 'chat-drift' could not be replayed" in message
    assert "timeout missing from request" in message
    assert list((tmp_path / "spans").glob("*.json")) == []


def test_deleted_golden_is_rerecorded_through_the_api(tmp_path: Path):
    spans = tmp_path / "spans"
    shutil.copytree(SPANS, spans)
    (spans / "chat-streaming.json").unlink()
    with pytest.raises(GoldenSpanMissingError) as raised:
        get_span("chat-streaming", spans_dir=spans, record=False)
    assert str(spans / "chat-streaming.json") in str(raised.value)
    assert f"testopeninference record --spans-dir {spans} chat-streaming" in str(raised.value)
    assert "--record-spans" in str(raised.value) and "test_get_all_spans" not in str(raised.value)
    span = get_span("chat-streaming", spans_dir=spans, record=True)
    assert span.name == "ChatCompletion"
    assert (spans / "chat-streaming.json").read_bytes() == (SPANS / "chat-streaming.json").read_bytes()


def test_cli_records_missing_goldens_and_reports_each(tmp_path: Path):
    spans = tmp_path / "spans"
    spans.mkdir()
    shutil.copy(SPANS / "chat-basic.json", spans)
    out, err = StringIO(), StringIO()
    code = main(["record", "--spans-dir", str(spans), "chat-basic", "embeddings-basic"], out=out, err=err)
    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0] == "present   chat-basic"
    assert lines[1] == "backend   local"
    assert lines[2].startswith("recorded  embeddings-basic -> ")
    assert lines[3].startswith("1 recorded, 1 present, ") and lines[3].endswith(" s in total")
    assert (spans / "embeddings-basic.json").read_bytes() == (SPANS / "embeddings-basic.json").read_bytes()


def test_cli_reports_our_errors_in_one_line(tmp_path: Path):
    out, err = StringIO(), StringIO()
    assert main(["record", "--spans-dir", str(tmp_path), "chat-basik"], out=out, err=err) == 1
    assert err.getvalue().startswith("Error: unknown cassette 'chat-basik'")


def test_proxy_that_fails_to_start_shows_its_output(tmp_path: Path):
    script = tmp_path / "broken_proxy.py"
    script.write_text("import sys\nprint('boom: cannot import the instrumentation')\nsys.exit(3)\n")
    settings = Settings(spans_dir=tmp_path, proxy_script=script)
    with pytest.raises(ProxyError) as raised:
        SpanRecorder(settings).start()
    assert "exited during start-up (code 3)" in str(raised.value)
    assert "boom: cannot import the instrumentation" in str(raised.value)


def test_other_installed_versions_stop_recording_unless_allowed(tmp_path: Path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("PyYAML==0.0.1\n")
    settings = Settings(spans_dir=tmp_path, requirements_file=requirements, proxy_env="current")
    with pytest.raises(VersionMismatchError, match=r"pyyaml: installed [\d.]+, pinned 0.0.1"):
        SpanRecorder(settings).start()
    from dataclasses import replace

    with SpanRecorder(replace(settings, allow_version_mismatch=True)) as recorder:
        assert recorder.capture("embeddings-basic").name == "CreateEmbeddings"

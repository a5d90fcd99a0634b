"""`testopeninference record` with several cassettes in flight through one proxy: the same bytes as one at a time."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest

from testopeninference.cli import main
from tests.helpers import CASSETTES


def _record(spans: Path, *options: str) -> str:
    out, err = StringIO(), StringIO()
    code = main(["record", "--force", "--cassettes-dir", str(CASSETTES), "--spans-dir", str(spans), *options],
                out=out, err=err)
    assert code == 0, err.getvalue()
    return out.getvalue()


def test_concurrent_recording_writes_the_bytes_of_a_serial_one(tmp_path: Path):
    serial, concurrent = tmp_path / "serial", tmp_path / "concurrent"
    _record(serial, "--concurrency", "1")
    output = _record(concurrent, "--concurrency", "4")
    names = sorted(path.stem for path in CASSETTES.glob("*.yaml"))
    assert f"{len(names)} recorded" in output
    written = sorted(path.relative_to(serial) for path in serial.rglob("*") if path.is_file()
                     and ".testopeninference.locks" not in path.parts)
    assert sorted([Path(f"{name}.json") for name in names] + [Path("manifest.yaml")]) == written
    for relative in written:  # every golden and the manifest, byte for byte
        assert (concurrent / relative).read_bytes() == (serial / relative).read_bytes(), relative


def test_record_many_keeps_each_span_with_its_own_cassette(tmp_path: Path):
    from testopeninference.recorder.config import Settings
    from testopeninference.recorder.session import SpanRecorder

    settings = Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path)
    names = ["chat-basic", "embeddings-basic", "completion-basic", "chat-streaming"] * 2
    with SpanRecorder(settings).start_in_background() as recorder:
        results = list(recorder.record_many(names, force=True, concurrency=4))
    assert sorted(result.cassette for result in results) == sorted(names)
    assert all(result.path == tmp_path / f"{result.cassette}.json" for result in results)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_concurrency_must_be_a_positive_number(value: str, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["record", "--concurrency", value])
    assert exit_info.value.code == 2
    assert "positive whole number" in capsys.readouterr().err


def test_a_failed_recording_stops_the_rest_and_names_the_cassette(tmp_path: Path):
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    for name in ("chat-basic", "embeddings-basic"):
        (cassettes / f"{name}.yaml").write_bytes((CASSETTES / f"{name}.yaml").read_bytes())
    broken = (CASSETTES / "chat-basic.yaml").read_text().replace('"model": "gpt-4.1-nano"',
                                                                 '"model": "gpt-4.1-nano", "no_such_argument": 1', 1)
    (cassettes / "chat-broken.yaml").write_text(broken)  # the SDK refuses the argument: the proxy answers 500
    out, err = StringIO(), StringIO()
    code = main(["record", "--concurrency", "3", "--cassettes-dir", str(cassettes), "--spans-dir",
                 str(tmp_path / "spans"), "chat-basic", "chat-broken", "embeddings-basic"], out=out, err=err)
    assert code == 1
    assert "recording 'chat-broken' failed" in err.getvalue()
    assert not (tmp_path / "spans" / "chat-broken.json").exists()


def test_the_golden_lock_is_held_only_while_writing(tmp_path: Path):
    """Another process holding a golden's lock does not hold up its recording: only the write waits."""
    import threading
    import time

    from testopeninference.recorder.config import Settings
    from testopeninference.recorder.locks import golden_lock
    from testopeninference.recorder.session import SpanRecorder

    settings = Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path)
    with SpanRecorder(settings) as recorder:
        results = []
        with golden_lock(tmp_path, "openinference.chat-basic"):  # as another process writing it would
            worker = threading.Thread(target=lambda: results.append(recorder.record("chat-basic")))
            worker.start()
            deadline = time.monotonic() + 30
            while not recorder.replayer.received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert recorder.replayer.received  # the request went through the proxy while the lock was held
            assert not (tmp_path / "chat-basic.json").exists()  # but nothing was written
        worker.join(30)
    assert results and results[0].recorded
    assert (tmp_path / "chat-basic.json").exists()


def test_an_unknown_name_fails_before_any_proxy_starts(tmp_path: Path, monkeypatch):
    from testopeninference.recorder.session import SpanRecorder

    started = []
    monkeypatch.setattr(SpanRecorder, "start_in_background", lambda self: started.append(self) or self)
    out, err = StringIO(), StringIO()
    code = main(["record", "--cassettes-dir", str(CASSETTES), "--spans-dir", str(tmp_path), "chat-basic",
                 "chat-basik"], out=out, err=err)
    assert code == 1
    assert "Did you mean: chat-basic" in err.getvalue()
    assert started == []


def test_nothing_due_starts_no_proxy_even_with_uncovered_cassettes(tmp_path: Path, monkeypatch):
    from testopeninference.recorder.session import SpanRecorder

    import shutil

    from tests.helpers import SPANS

    shutil.copytree(SPANS / "otel-genai", tmp_path / "otel-genai")  # every covered golden is there
    started = []
    monkeypatch.setattr(SpanRecorder, "start_in_background", lambda self: started.append(self) or self)
    out, err = StringIO(), StringIO()
    code = main(["record", "--convention", "otel-genai", "--cassettes-dir", str(CASSETTES), "--spans-dir",
                 str(tmp_path)], out=out, err=err)
    assert code == 0, err.getvalue()
    assert "0 recorded" in out.getvalue() and "not covered by otel-genai" in out.getvalue()
    assert started == []


def test_entering_a_recorder_started_in_background_starts_no_second_proxy(tmp_path: Path):
    """``with SpanRecorder(s).start_in_background()`` (as ``record`` does): one proxy, one fake server, one collector."""
    from testopeninference.recorder.backends.local import LocalBackend
    from testopeninference.recorder.config import Settings
    from testopeninference.recorder.session import SpanRecorder

    starts = []

    class CountingBackend(LocalBackend):
        def start(self, env):
            starts.append(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
            return super().start(env)

    settings = Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path)
    with SpanRecorder(settings, backend=CountingBackend(settings)).start_in_background() as recorder:
        assert recorder.record("chat-basic").recorded
    assert len(starts) == 1


def test_the_golden_is_written_and_synced_before_the_manifest_lock(tmp_path: Path):
    """Only the manifest's part waits for the directory's lock: the span's file is complete before it."""
    import threading
    import time

    from testopeninference.recorder.config import Settings
    from testopeninference.recorder.locks import directory_lock
    from testopeninference.recorder.session import SpanRecorder

    settings = Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path)
    with SpanRecorder(settings) as recorder:
        results = []
        with directory_lock(tmp_path):  # as another recording committing its manifest entry would
            worker = threading.Thread(target=lambda: results.append(recorder.record("chat-basic")))
            worker.start()
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob(".chat-basic.json.*.tmp")) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert list(tmp_path.glob(".chat-basic.json.*.tmp"))  # written while the lock was held elsewhere
            assert not (tmp_path / "chat-basic.json").exists() and not (tmp_path / "manifest.yaml").exists()
        worker.join(30)
    assert results and results[0].recorded
    assert (tmp_path / "chat-basic.json").read_bytes() == (CASSETTES.parent / "spans" / "chat-basic.json").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))

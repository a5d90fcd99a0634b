"""Bad input and faults: one clear error each, nothing half-written, and the next recording still works."""

from __future__ import annotations

import os
import socket
import time
from io import StringIO
from pathlib import Path

import pytest

from testopeninference.recorder.backends.local import LocalBackend
from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.config import Settings
from testopeninference.recorder.fake_openai import CassetteReplayer, ReplayResponse
from testopeninference.recorder.session import SpanRecorder
from testopeninference import get_span
from testopeninference.cli import main
from testopeninference.errors import InvalidGoldenSpanError, ProxyError, RecordingError, SpanTimeoutError
from tests.helpers import SPANS


class ProxyKillingReplayer(CassetteReplayer):
    """Streams slowly and kills the proxy after the first event, once (a test double of the real replayer)."""

    def __init__(self, library: CassetteLibrary, recorder: SpanRecorder) -> None:
        super().__init__(library)
        self.recorder = recorder
        self.killed = False

    def _replay(self, cassette) -> ReplayResponse:
        response = super()._replay(cassette)
        if not response.streamed or self.killed:
            return response
        self.killed = True

        def events():
            yield response.chunks[0]
            self.recorder._backend._process.kill()  # noqa: SLF001 - the crash under test
            time.sleep(0.5)
            yield from response.chunks[1:]

        return ReplayResponse(response.status, response.headers, events(), streamed=True)


def test_proxy_killed_mid_stream_fails_clearly_and_the_next_recording_succeeds(tmp_path: Path):
    recorder = SpanRecorder(Settings(spans_dir=tmp_path, span_timeout=10))
    recorder.replayer = ProxyKillingReplayer(recorder.library, recorder)
    with recorder:
        with pytest.raises(ProxyError) as raised:
            recorder.record("chat-streaming")
        assert "recording 'chat-streaming' failed: the proxy died" in str(raised.value)
        assert "Nothing was written" in str(raised.value)
        assert list(tmp_path.glob("*.json")) == []
        result = recorder.record("chat-streaming")
    assert result.path.read_bytes() == (SPANS / "chat-streaming.json").read_bytes()


class SilentProxyBackend(LocalBackend):
    """A proxy that exports nothing, as one with a broken exporter would."""

    def start(self, env):
        print("(the proxy starts with its exporter switched off)")
        return super().start({**env, "OTEL_TRACES_EXPORTER": "none"})


def test_no_span_before_the_timeout_names_the_cassette_and_the_proxy_output(tmp_path: Path):
    settings = Settings(spans_dir=tmp_path, span_timeout=0.5)
    with SpanRecorder(settings, backend=SilentProxyBackend(settings)) as recorder:
        with pytest.raises(SpanTimeoutError) as raised:
            recorder.record("chat-basic")
    message = str(raised.value)
    assert "arrived for cassette 'chat-basic' within 0.5 s" in message
    assert "TESTOPENINFERENCE_SPAN_TIMEOUT" in message and "Proxy output:" in message
    assert list(tmp_path.glob("*.json")) == []


def test_a_read_only_spans_directory_is_one_clear_error(tmp_path: Path, monkeypatch):
    import testopeninference.recorder.atomic

    def read_only(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(testopeninference.recorder.atomic.os, "replace", read_only)  # root ignores chmod, so the OS error is simulated
    with SpanRecorder(Settings(spans_dir=tmp_path)) as session, pytest.raises(RecordingError) as raised:
        session.record("embeddings-basic")
    assert f"cannot write the golden {tmp_path / 'embeddings-basic.json'}: Permission denied" in str(raised.value)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".testopeninference")] == []


def test_a_spans_directory_that_is_a_file_is_one_clear_error(tmp_path: Path):
    blocker = tmp_path / "spans"
    blocker.write_text("not a directory")
    with SpanRecorder(Settings(spans_dir=blocker)) as session, pytest.raises(RecordingError, match="cannot write"):
        session.record("embeddings-basic")


def test_a_corrupt_golden_is_reported_and_never_silently_rerecorded(tmp_path: Path):
    (tmp_path / "chat-basic.json").write_text('{"name": "ChatCompletion", "attributes": [')
    with pytest.raises(InvalidGoldenSpanError) as raised:
        get_span("chat-basic", spans_dir=tmp_path, record=True)
    assert str(tmp_path / "chat-basic.json") in str(raised.value)
    assert (tmp_path / "chat-basic.json").read_text() == '{"name": "ChatCompletion", "attributes": ['


def test_a_port_in_use_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out, err = StringIO(), StringIO()
        assert main(["serve", "--openai-port", str(port), "--otlp-port", "0", "--seconds", "0"], out, err) == 1
    assert err.getvalue().startswith("Error: cannot listen on 127.0.0.1:")
    assert "Address already in use" in err.getvalue() and "choose other ports" in err.getvalue()


def listening_addresses(ports: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket on these ports, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] != "0A" or int(port, 16) not in ports:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            if len(raw) == 4:
                host = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                host = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            found.add((host, int(port, 16)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
def test_every_server_listens_on_loopback_only(tmp_path: Path):
    with SpanRecorder(Settings(spans_dir=tmp_path)) as recorder:
        ports = {int(url.rsplit(":", 1)[1]) for url in
                 (recorder._fake.base_url, recorder._collector.endpoint, recorder._proxy_url)}  # noqa: SLF001
        listening = listening_addresses(ports)
    assert {port for _, port in listening} == ports
    assert {host for host, _ in listening} == {"127.0.0.1"}


def test_no_secret_from_the_environment_reaches_the_proxy_or_any_file(tmp_path: Path, monkeypatch, capfd):
    secret = "sk-proj-SECRETFROMTHEENVIRONMENT0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", secret + "azure")
    settings = Settings.from_env(spans_dir=tmp_path)
    assert settings.upstream.enabled and secret not in repr(settings)
    with SpanRecorder(settings) as recorder:
        for name in ("chat-basic", "azure-chat-basic", "chat-bad-request"):
            recorder.record(name)
        proxy_environment = Path(f"/proc/{recorder._backend._process.pid}/environ").read_bytes()  # noqa: SLF001
        logs = recorder._backend.logs()  # noqa: SLF001
    assert secret.encode() not in proxy_environment
    written = "".join(p.read_text() for p in tmp_path.iterdir() if p.is_file())
    assert secret not in written and secret not in logs and secret not in "".join(capfd.readouterr())
    for name in ("chat-basic", "azure-chat-basic", "chat-bad-request"):
        assert (tmp_path / f"{name}.json").read_bytes() == (SPANS / f"{name}.json").read_bytes()


def test_written_files_are_not_world_writable(tmp_path: Path):
    previous = os.umask(0)
    try:
        with SpanRecorder(Settings(spans_dir=tmp_path)) as recorder:
            recorder.record("embeddings-basic")
    finally:
        os.umask(previous)
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o002 == 0, path


DISK_FULL_CHILD = """
import resource, signal, sys
from pathlib import Path
from testopeninference.recorder.config import Settings
from testopeninference.recorder.session import SpanRecorder
from testopeninference.errors import RecordingError

with SpanRecorder(Settings(spans_dir=Path(sys.argv[1]))) as recorder:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, resource.RLIM_INFINITY))  # golden fits, manifest not
    try:
        recorder.record("embeddings-basic")
    except RecordingError as error:
        print(error)
"""


def test_a_full_disk_leaves_neither_a_golden_without_its_manifest_entry_nor_a_temporary(tmp_path: Path):
    import subprocess
    import sys

    manifest = tmp_path / "manifest.yaml"
    manifest.write_bytes((SPANS / "manifest.yaml").read_bytes())  # 30 kB: past the limit, unlike the golden
    assert (SPANS / "embeddings-basic.json").stat().st_size < 10_000 < manifest.stat().st_size
    result = subprocess.run([sys.executable, "-c", DISK_FULL_CHILD, str(tmp_path)], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"cannot write the golden {tmp_path / 'embeddings-basic.json'}: File too large")
    assert "Nothing was written" in result.stdout
    assert not (tmp_path / "embeddings-basic.json").exists()
    assert manifest.read_bytes() == (SPANS / "manifest.yaml").read_bytes()
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_a_lock_file_that_is_a_symlink_is_refused_not_followed(tmp_path: Path):
    from testopeninference.recorder.locks import LOCK_NAME, directory_lock

    target = tmp_path / "victim"
    target.write_text("keep")
    spans = tmp_path / "spans"
    (spans / LOCK_NAME).parent.mkdir(parents=True)
    (spans / LOCK_NAME).symlink_to(target)
    with pytest.raises(RecordingError, match="is a symbolic link"):
        with directory_lock(spans):
            pass
    assert target.read_text() == "keep"

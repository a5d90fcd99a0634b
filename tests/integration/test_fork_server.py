"""Proxies forked from the fork server: the same goldens, the same clean-up, and clear errors.

From the second local proxy alive at once, ``LocalBackend`` forks proxies from one process that imported their
common packages once (``recorder/backends/fork_server.py``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path

import pytest

from testopeninference.errors import ProxyError
from testopeninference.recorder.backends import fork_server
from testopeninference.recorder.backends.environment import recording_environment
from testopeninference.recorder.backends.local import LocalBackend
from testopeninference.recorder.config import Settings
from testopeninference.recorder.session import SpanRecorder
from tests.helpers import CASSETTES, SPANS
from tests.integration.proxy_owner import kill_owner, port_free, process_gone, start_owner, wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not fork_server.available(), reason="forking proxies needs Linux pidfds")]

CASSETTES_RECORDED = ("chat-basic", "chat-streaming", "anthropic-messages-basic", "cohere-rerank-basic")


def _settings(tmp_path: Path, convention: str, **overrides: object) -> Settings:
    return Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path, convention=convention, backend="local",
                             **overrides)


def test_a_second_proxy_is_forked_and_records_the_same_goldens(tmp_path: Path):
    with SpanRecorder(_settings(tmp_path, "openinference")) as first, \
            SpanRecorder(_settings(tmp_path, "openllmetry")) as second:
        assert not isinstance(first._backend._process, fork_server.ForkedProxy)  # noqa: SLF001
        assert isinstance(second._backend._process, fork_server.ForkedProxy)  # noqa: SLF001
        for recorder in (first, second):
            for name in CASSETTES_RECORDED:
                recorder.record(name, force=True)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json"))
    assert written and all((tmp_path / p).read_bytes() == (SPANS / p).read_bytes() for p in written), written
    assert len(written) == 2 * len(CASSETTES_RECORDED)


def test_with_proxy_fork_false_every_proxy_starts_alone(tmp_path: Path):
    with SpanRecorder(_settings(tmp_path, "openinference", proxy_fork=False)), \
            SpanRecorder(_settings(tmp_path, "openllmetry", proxy_fork=False)) as second:
        assert not isinstance(second._backend._process, fork_server.ForkedProxy)  # noqa: SLF001


def test_the_fork_server_stops_with_its_last_user(tmp_path: Path):
    with contextlib.ExitStack() as stack:
        for convention in ("openinference", "openllmetry", "otel-genai"):
            stack.enter_context(SpanRecorder(_settings(tmp_path, convention)))
        server = fork_server._servers[(sys.executable, str(Settings().proxy_script))]  # noqa: SLF001
        assert server.users == 2  # the first proxy started alone
    assert server._process.poll() is not None  # noqa: SLF001
    assert not fork_server.running(sys.executable, Settings().proxy_script)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_forked_proxies_and_their_server_die_with_the_recorder(signum: int, tmp_path: Path):
    owner, described = start_owner("local", tmp_path, "openinference,openllmetry,otel-genai")
    forked = described["proxies"][1:]
    assert all(proxy["fork_server"] for proxy in forked) and not any(process_gone(p["pid"]) for p in forked)
    kill_owner(owner, signum)
    for pid in [forked[0]["fork_server"], *(p["pid"] for p in described["proxies"])]:
        assert wait_until(lambda: process_gone(pid)), f"pid {pid} outlived its recorder"
    assert all(wait_until(lambda: port_free(p["url"])) for p in described["proxies"])


def test_a_fork_server_that_cannot_start_says_why(tmp_path: Path):
    broken = tmp_path / "openai_proxy.py"
    broken.write_text("import sys\nprint('broken proxy script: cannot import anything', file=sys.stderr)\nsys.exit(1)\n")
    env = recording_environment("http://127.0.0.1:9", "http://127.0.0.1:9")
    with contextlib.closing(_Stopping(LocalBackend(_settings(tmp_path, "openinference")))) as first:
        first.backend.launch(env)
        second = LocalBackend(_settings(tmp_path, "openllmetry", proxy_script=broken))
        try:
            with pytest.raises(ProxyError, match="(?s)exited during start-up.*fork server's output.*broken proxy"):
                second.start(env)
        finally:
            second.stop()


class _Stopping:
    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend

    def close(self) -> None:
        self.backend.stop()


def test_a_prestarted_fork_server_forks_the_first_proxy_too(tmp_path: Path):
    from testopeninference.recorder.backends.local import prestart_fork_server

    settings = _settings(tmp_path, "openinference")
    release = prestart_fork_server(settings)
    try:
        with SpanRecorder(settings) as recorder:
            assert isinstance(recorder._backend._process, fork_server.ForkedProxy)  # noqa: SLF001
            recorder.record("chat-basic", force=True)
    finally:
        release()
    assert (tmp_path / "chat-basic.json").read_bytes() == (SPANS / "chat-basic.json").read_bytes()
    assert not fork_server.running(sys.executable, settings.proxy_script)


def test_prestarting_is_a_no_op_for_docker_or_when_turned_off(tmp_path: Path):
    from testopeninference.recorder.backends.local import prestart_fork_server

    for settings in (_settings(tmp_path, "openinference", proxy_fork=False),
                     _settings(tmp_path, "openinference").__class__(backend="docker")):
        prestart_fork_server(settings)()
        assert not fork_server.running(sys.executable, settings.proxy_script)


def test_a_forked_proxy_reports_its_own_exit_status_and_can_be_killed(tmp_path: Path):
    import socket
    import tempfile

    from testopeninference.recorder.backends.environment import proxy_environment
    from testopeninference.recorder.backends.lifeline import Lifeline

    script = Settings().proxy_script
    env = proxy_environment(recording_environment("http://127.0.0.1:9", "http://127.0.0.1:9"), {"PATH": "/usr/bin"})
    server = fork_server.ForkServer(sys.executable, script, env)
    try:
        with socket.create_server(("127.0.0.1", 0)) as listener, tempfile.TemporaryFile() as log:
            refused = server.spawn(["--fd", "{fd}", "--convention", "no-such-convention"], env, listener, log)
            assert refused.wait(timeout=60) is not None and refused.returncode == 2  # argparse's usage error
            log.seek(0)
            assert b"invalid choice: 'no-such-convention'" in log.read()
            lifeline = Lifeline()  # should the kill fail, the proxy still ends with the test
            try:
                running = server.spawn(["--fd", "{fd}", "--lifeline", lifeline.address], env, listener, log)
                assert running.poll() is None
                running.kill()
                running.wait(timeout=60)
                assert running.poll() is not None and running.returncode is None  # killed: it said nothing
            finally:
                lifeline.close()
    finally:
        server.close()

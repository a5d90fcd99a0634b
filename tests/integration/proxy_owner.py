"""A recording process to kill: starts a SpanRecorder, prints where its proxy runs, then waits.

``python -m tests.integration.proxy_owner BACKEND SPANS_DIR [CONVENTION,...]``: with several conventions, one
recorder each (the local backend forks all proxies after the first), and every proxy is printed. SIGTERM and SIGHUP unwind it like Ctrl-C, as
they do ``testopeninference record``. The helpers below start one and watch what it leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from tests.helpers import CASSETTES, PROJECT

STARTUP_TIMEOUT = 120  # seconds; the Docker backend may build its image first
GONE_TIMEOUT = 30
INTERRUPTED = 130


def main(backend: str, spans_dir: str, conventions: str = "openinference") -> None:
    import contextlib

    from testopeninference.recorder.config import Settings
    from testopeninference.recorder.session import SpanRecorder
    from testopeninference.recorder.signals import interrupt_on_termination

    try:
        with interrupt_on_termination(), contextlib.ExitStack() as stack:
            proxies = []
            for convention in conventions.split(","):
                settings = Settings.from_env(cassettes_dir=CASSETTES, spans_dir=Path(spans_dir), backend=backend,
                                             convention=convention)
                proxies.append(_described(stack.enter_context(SpanRecorder(settings))))
            print(json.dumps({**proxies[0], "proxies": proxies}), flush=True)
            while True:
                time.sleep(0.2)
    except KeyboardInterrupt:  # after the recorder's clean-up, as `testopeninference record` does
        sys.exit(INTERRUPTED)


def _described(recorder: object) -> dict:
    """Where a recorder's proxy runs: url, pid (local) or container id (docker), and its fork server's pid."""
    proxy = recorder._backend  # noqa: SLF001
    process, container = getattr(proxy, "_process", None), getattr(proxy, "_container", None)
    server = getattr(proxy, "_fork_server", None)
    return {"url": recorder._proxy_url, "pid": process.pid if process else None,  # noqa: SLF001
            "container": container.id if container else None,
            "fork_server": server._process.pid if server else None}  # noqa: SLF001


def start_owner(backend: str, spans_dir: Path, conventions: str = "openinference") -> tuple[subprocess.Popen, dict]:
    """The owner process and what it printed: the proxy's url, pid (local) or container id (docker)."""
    owner = subprocess.Popen([sys.executable, "-m", "tests.integration.proxy_owner", backend, str(spans_dir),
                              conventions],
                             cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = _read_line(owner, STARTUP_TIMEOUT)
    if not line:
        owner.kill()
        raise AssertionError(f"the owner printed nothing; it said:\n{owner.communicate(timeout=30)[1][-3000:]}")
    return owner, json.loads(line)


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline()


def kill_owner(owner: subprocess.Popen, signum: int) -> int:
    """Send ``signum`` and reap the owner; its exit status."""
    owner.send_signal(signum)
    try:
        return owner.wait(timeout=GONE_TIMEOUT)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def wait_until(condition: Callable[[], bool], timeout: float = GONE_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def process_gone(pid: int) -> bool:
    """No such process, or only a zombie waiting to be reaped (it holds no port)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def port_free(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1])
    try:
        with socket.create_server(("127.0.0.1", port)):
            return True
    except OSError:
        return False


SIGNALS = [signal.SIGKILL, signal.SIGTERM] if hasattr(signal, "SIGKILL") else []

if __name__ == "__main__":
    main(*sys.argv[1:4])

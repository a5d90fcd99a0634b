"""The proxy never outlives the process that recorded with it, whatever signal ends that process.

A real recording process (``proxy_owner``) is started and killed; its proxy must be gone and its port free
within a bounded wait. The Docker equivalent is in test_docker_backend.py.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT
from tests.integration.proxy_owner import INTERRUPTED, SIGNALS, kill_owner, port_free, process_gone, start_owner, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_the_local_proxy_dies_with_its_recorder(signum: int, tmp_path: Path):
    owner, proxy = start_owner("local", tmp_path)
    assert not process_gone(proxy["pid"]) and not port_free(proxy["url"])
    status = kill_owner(owner, signum)
    if signum == signal.SIGTERM:
        assert status == INTERRUPTED  # it unwound, cleaning up, instead of dying on the spot
    assert wait_until(lambda: process_gone(proxy["pid"])), f"the proxy (pid {proxy['pid']}) outlived its recorder"
    assert wait_until(lambda: port_free(proxy["url"])), f"{proxy['url']} is still taken"


def test_a_proxy_whose_lifeline_is_unreachable_exits_at_once(tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        address = "127.0.0.1:%d" % closed.getsockname()[1]
    done = subprocess.run([sys.executable, "openai_proxy.py", "--port", "0", "--lifeline", address],
                          cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert f"cannot reach the recorder's lifeline {address}" in done.stderr

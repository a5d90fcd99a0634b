"""Starting the example gateway (``examples/gateway/gateway.py``) as a real process, the way a gateway
author's fixture starts theirs: upstream at the fake server, OTLP at the collector, always stopped."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from typing import Iterator

import httpx

from tests.helpers import PROJECT

GATEWAY = PROJECT / "examples" / "gateway" / "gateway.py"
STARTUP_TIMEOUT = 60.0


@contextlib.contextmanager
def running_gateway(upstream: str, otlp_endpoint: str, *args: str, protocol: str = "http/protobuf") -> Iterator[str]:
    """The gateway's URL while it runs; it is stopped (killed if it must be) however the block ends."""
    settings = dict(OPENAI_BASE_URL=upstream, OPENAI_API_KEY="unused", OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
                    OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    with running_server([sys.executable, str(GATEWAY), *args], settings) as url:
        yield url


@contextlib.contextmanager
def running_server(command: list[str], settings: dict[str, str]) -> Iterator[str]:
    """A gateway process (``command`` plus ``--port P``) with an allow-listed environment and ``settings``: its
    URL once ``/health`` answers; stopped (killed if it must be) however the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "SYSTEMROOT") if name in os.environ}
    env.update(OTEL_BSP_SCHEDULE_DELAY="10", **settings)
    process = subprocess.Popen([*command, "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()


def _wait_until_healthy(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    output = process.communicate(timeout=10)[0].decode(errors="replace")
    raise RuntimeError(f"the gateway did not become healthy at {url}:\n{output}")

"""Starting LiteLLM's proxy (``examples/litellm/``) as the gateway under test: its own cached virtualenv,
upstream at the fake server, OTLP at the collector, an allow-listed environment, always stopped.

LiteLLM's pins clash with the harness's, so it runs from a virtualenv of its own made from
``examples/litellm/requirements.txt`` by the proxy's machinery (``recorder/proxy_env.py``, under the
project's cache directory, once per set of pins and Python version).

``conform_arguments`` is the same gateway as ``testopeninference conform`` scores it (``litellm.env``,
``baseline.yaml``); ``python -m tests.integration.litellm_gateway --print-conform-command`` prints that
command with the virtualenv's path filled in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx

from testopeninference.conform.gateway_process import read_env_file
from testopeninference.recorder.proxy_env import proxy_python
from tests.helpers import PROJECT

EXAMPLE = PROJECT / "examples" / "litellm"
REQUIREMENTS = EXAMPLE / "requirements.txt"
ENV_FILE = EXAMPLE / "litellm.env"  # LiteLLM's environment for conform
BASELINE = EXAMPLE / "baseline.yaml"  # the differences LiteLLM is known to have, each with a reason
IGNORE_BODY_KEYS = ("stream", "stream_options")  # it drops "stream": false, adds stream_options to streamed completions
SELECTION = "chat-* or completion-* or embeddings-*"  # the cassettes LiteLLM's proxy serves (not azure-*)
CONFIGS = {"arize_phoenix": EXAMPLE / "config.yaml", "otel": EXAMPLE / "config-otel.yaml"}
STARTUP_TIMEOUT = 180.0  # seconds: LiteLLM imports a great deal before it listens
STOP_TIMEOUT = 15.0
DUMMY_KEY = "sk-testopeninference-dummy"  # never a real key: the fake server ignores it
_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")  # nothing else of the caller's reaches LiteLLM

# Runs in LiteLLM's own interpreter: dies with the process that started it (Linux), then becomes LiteLLM.
_DIE_WITH_PARENT_THEN_EXEC = """
import ctypes, os, signal, sys
parent = int(sys.argv[1])
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        sys.exit("the process that started LiteLLM is gone")
os.execv(sys.argv[2], sys.argv[2:])
"""


@dataclasses.dataclass(frozen=True)
class LiteLLMGateway:
    """A running LiteLLM proxy: ``url`` to send requests to with ``headers`` (its master key), how long it
    took to answer, where its output is."""

    url: str
    master_key: str
    started_in: float  # seconds from launch until /health/liveliness answered 200
    log: Path

    def output(self) -> str:
        """What LiteLLM printed so far (its stdout and stderr), for error messages."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    @property
    def headers(self) -> dict[str, str]:
        """LiteLLM refuses to start without a master key, and then every request must carry it."""
        return {"Authorization": f"Bearer {self.master_key}"}


def litellm_executable(cache_dir: Path, progress: Callable[[str], None] = lambda line: None) -> Path:
    """The ``litellm`` command of LiteLLM's own virtualenv, made on first use under ``cache_dir``."""
    python: Path = proxy_python(REQUIREMENTS, cache_dir, progress, purpose="litellm")
    return python.parent / ("litellm.exe" if os.name == "nt" else "litellm")


def litellm_environment(upstream: str, otlp_endpoint: str, callback: str, protocol: str, home: Path,
                        master_key: str) -> dict[str, str]:
    """The allow-listed environment: the caller's secrets never reach LiteLLM; a dummy upstream key and a
    master key of this run; no network at start-up (the packaged model cost map); the callback's exporter
    pointed at the collector (the Phoenix variables only for arize_phoenix: with them set, LiteLLM's otel
    callback exports to Phoenix as well)."""
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env.update(
        HOME=str(home),
        OPENAI_BASE_URL=upstream,
        OPENAI_API_KEY=DUMMY_KEY,
        LITELLM_MASTER_KEY=master_key,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_TELEMETRY="False",
        OTEL_SERVICE_NAME="litellm",
        OTEL_BSP_SCHEDULE_DELAY="50",  # export each span within 50 ms, not 5 s
        PYTHONUNBUFFERED="1",
    )
    if callback == "arize_phoenix" and protocol == "grpc":  # a grpc:// URL, plaintext on loopback
        env.update(PHOENIX_COLLECTOR_ENDPOINT="grpc://" + otlp_endpoint.split("://", 1)[-1],
                   OTEL_EXPORTER_OTLP_INSECURE="true", PHOENIX_PROJECT_NAME="testopeninference")
    elif callback == "arize_phoenix":  # OTLP/HTTP; /v1/traces is added
        env.update(PHOENIX_COLLECTOR_HTTP_ENDPOINT=otlp_endpoint, PHOENIX_PROJECT_NAME="testopeninference")
    else:  # otel: OTLP over OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf or grpc)
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    return env


@contextlib.contextmanager
def running_litellm(
    executable: Path,
    upstream: str,
    otlp_endpoint: str,
    workdir: Path,
    *,
    callback: str = "arize_phoenix",
    protocol: str = "http/protobuf",
) -> Iterator[LiteLLMGateway]:
    """LiteLLM's proxy on 127.0.0.1 while the block runs; its process group is stopped however the block
    ends, and it dies with this process. A start that fails raises with LiteLLM's output."""
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"litellm-{callback}-{port}.log"
    command = [str(executable), "--config", str(CONFIGS[callback]), "--host", "127.0.0.1", "--port", str(port)]
    launcher = [str(executable.parent / "python"), "-c", _DIE_WITH_PARENT_THEN_EXEC, str(os.getpid()), *command]
    master_key = f"sk-{secrets.token_hex(32)}"
    env = litellm_environment(upstream, otlp_endpoint, callback, protocol, workdir, master_key)
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(launcher, env=env,
                                   cwd=workdir, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    gateway = LiteLLMGateway(f"http://127.0.0.1:{port}", master_key, 0.0, log)
    try:
        _wait_until_live(process, gateway)
        yield dataclasses.replace(gateway, started_in=time.monotonic() - started)
    finally:
        _stop(process)


def conform_arguments(executable: Path, *, absolute: bool = False) -> list[str]:
    """``testopeninference conform``'s arguments for LiteLLM (paths relative to the repository root, where it
    runs, unless ``absolute``): its command, environment, master key, readiness path, tolerated request
    changes and cassettes."""
    example = EXAMPLE if absolute else EXAMPLE.relative_to(PROJECT)
    master_key = read_env_file(ENV_FILE)["LITELLM_MASTER_KEY"]
    gateway = [str(executable), "--config", str(example / "config.yaml"), "--host", "127.0.0.1", "--port"]
    tolerated = [argument for key in IGNORE_BODY_KEYS for argument in ("--ignore-body-key", key)]
    return ["conform", "--gateway-cmd", shlex.join(gateway) + " {port}", "--env-file", str(example / ENV_FILE.name),
            "--header", f"Authorization: Bearer {master_key}", "--ready-path", "/health/liveliness",
            "--start-timeout", f"{STARTUP_TIMEOUT:g}", *tolerated, "-k", SELECTION]


def conform_command_line(executable: Path) -> str:
    """The shell command scoring LiteLLM against its baseline: ``env -i`` keeps everything of the caller's but
    ``PATH`` and ``HOME`` from LiteLLM, which gets ``litellm.env`` on top."""
    arguments = [*conform_arguments(executable), "--baseline", str(BASELINE.relative_to(PROJECT))]
    return 'env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 testopeninference ' + shlex.join(arguments)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_live(process: subprocess.Popen[bytes], gateway: LiteLLMGateway) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{gateway.url}/health/liveliness", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    state = f"exited {process.returncode}" if process.poll() is not None else f"not live after {STARTUP_TIMEOUT:.0f} s"
    _stop(process)
    tail = "\n".join("  | " + line for line in gateway.output().splitlines()[-40:])
    raise RuntimeError(f"LiteLLM's proxy did not start at {gateway.url} ({state}); its output:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to LiteLLM's process group, SIGKILL if it lingers."""
    for signum, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum) if sys.platform != "win32" else process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError):  # workers it left behind in its group
        os.killpg(process.pid, signal.SIGKILL)


def main(arguments: list[str]) -> None:
    """The path of LiteLLM's command (made on first use), or with ``--print-conform-command`` the whole
    ``testopeninference conform`` command line for it."""
    from testopeninference.recorder.proxy_env import default_cache_dir

    executable = litellm_executable(default_cache_dir(os.environ), lambda line: print(line, file=sys.stderr))
    print(conform_command_line(executable) if "--print-conform-command" in arguments else executable)


if __name__ == "__main__":  # python -m tests.integration.litellm_gateway [--print-conform-command]
    main(sys.argv[1:])

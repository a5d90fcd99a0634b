"""The gateway under test as a child process: started from ``--gateway-cmd``, waited for, always stopped.

The command is the user's: placeholders (``{openai_base_url}``, ``{otlp_endpoint}``,
``{otlp_grpc_endpoint}``, ``{port}``, ``{python}``) are filled in shell-quoted,
then it runs without a shell, in a process group of its own, with the user's
environment plus ``--env-file`` (it is the user's gateway: it needs their
settings). A small launcher execs it after asking Linux for SIGTERM on our
death; stopping sends SIGTERM to the group, then SIGKILL. Its output is kept
(the last lines) and quoted when it dies or never gets ready.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Mapping

from testopeninference.conform.gateway_output import GatewayOutput, quoted
from testopeninference.errors import ConformUsageError, GatewayProcessError

PLACEHOLDERS = ("openai_base_url", "fake_base_url", "otlp_endpoint", "otlp_grpc_endpoint", "port", "python")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_LOOKS_LIKE_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")  # JSON and ${VAR} never look like this
_LINE_CONTINUATION = re.compile(r"(?<!\\)((?:\\\\)*)\\\r?\n")
"""A backslash-newline (not an escaped backslash then a newline): inside the quotes of ``--gateway-cmd '...'`` the
shell keeps it, and shlex would make the newline an argument of its own."""
DEFAULT_ENV = {"OPENAI_BASE_URL": "{openai_base_url}", "OTEL_EXPORTER_OTLP_ENDPOINT": "{otlp_endpoint}",
               "OTEL_BSP_SCHEDULE_DELAY": "100"}
"""What every gateway is given unless ``--no-default-env``: the standard variables of the OpenAI SDK and the
OpenTelemetry SDK, pointing at the fake server and the collector (spans exported within 0.1 s, not 5 s)."""
NO_PORT_HINT = ("--gateway-cmd has no {{port}}, so the gateway does not know port {number}, where conform waits "
                "for it; add e.g. --port {{port}} to the command")
STOP_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fill_command(command: str, values: Mapping[str, str]) -> list[str]:
    """The command's arguments with each known ``{placeholder}`` filled (other braces are left alone; an
    unknown ``{name}`` is a usage error)."""
    check_placeholders(command, "--gateway-cmd")
    joined = _LINE_CONTINUATION.sub(r"\1", command)  # a command pasted over several lines, as a shell joins them
    filled = _PLACEHOLDER.sub(lambda match: shlex.quote(values[match.group(1)]), joined)
    try:
        arguments = shlex.split(filled)
    except ValueError as error:
        raise ConformUsageError(f"--gateway-cmd {command!r} cannot be split into arguments ({error}); "
                                "check its quotes.") from None
    if not arguments:
        raise ConformUsageError("--gateway-cmd is empty; give the command that starts the gateway.")
    return arguments


def check_placeholders(text: str, where: str) -> None:
    """A usage error for a ``{name}`` that is no placeholder (a typo such as ``{prot}`` would pass as is)."""
    for match in _LOOKS_LIKE_PLACEHOLDER.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            close = difflib.get_close_matches(match.group(1), PLACEHOLDERS, n=1)
            hint = f"did you mean {{{close[0]}}}? " if close else ""
            known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
            raise ConformUsageError(f"{where} {text!r} has the unknown placeholder {match.group(0)}; {hint}"
                                    f"the placeholders are {known}.")


def fill_values(env: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """``--env-file`` values with each known ``{placeholder}`` filled (as is: no shell reads them)."""
    for key, value in env.items():
        check_placeholders(value, f"--env-file value {key}=")
    return {key: _PLACEHOLDER.sub(lambda match: values[match.group(1)], value) for key, value in env.items()}


def gateway_env(extra: Mapping[str, str], values: Mapping[str, str], *, defaults: bool = True) -> dict[str, str]:
    """The gateway's environment: this process's, then ``DEFAULT_ENV`` (unless ``defaults`` is false), then
    ``--env-file`` (``extra``), placeholders filled."""
    given = {**(DEFAULT_ENV if defaults else {}), **extra}
    return {**os.environ, **fill_values(given, values)}


def mentions_port(command: str, extra: Mapping[str, str]) -> bool:
    """Whether the gateway is told its port: ``{port}`` in the command or an ``--env-file`` value."""
    return any("{port}" in text for text in (command, *extra.values()))


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` allowed, ``#`` comments, values optionally quoted; placeholders are
    filled later, ``fill_values``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConformUsageError(f"cannot read --env-file {path} ({error.strerror or error}).") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConformUsageError(f"{path}:{number}: {line!r} is not KEY=VALUE; fix the line or remove it.")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


class GatewayProcess:
    """A started gateway: ``url`` once ready; ``stop()`` ends its whole process group."""

    def __init__(self, arguments: list[str], port: int, env: Mapping[str, str], *, ready_path: str | None = None,
                 start_timeout: float = 60.0, not_ready_hint: str = "") -> None:
        """``not_ready_hint`` is said first when the gateway never gets ready (a likely cause known up front)."""
        self.arguments = arguments
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._env = dict(env)
        self._ready_path = ready_path
        self._start_timeout = start_timeout
        self._not_ready_hint = not_ready_hint
        self.output = GatewayOutput()  # its lines, numbered: a cassette's detail quotes those since it was sent
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> GatewayProcess:
        try:
            self._process = subprocess.Popen(
                [*_launcher(), *self.arguments], env=self._env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as error:
            raise ConformUsageError(f"cannot start the gateway {shlex.join(self.arguments)!r} "
                                    f"({error.strerror or error}); check --gateway-cmd.") from None
        assert self._process.stdout is not None
        self._reader = threading.Thread(target=self._keep_output, args=(self._process.stdout,),
                                        name="gateway-output", daemon=True)
        self._reader.start()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _keep_output(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.output.append(raw.decode(errors="replace").rstrip("\n"))

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self._ready():
                return
            time.sleep(0.05)
        what = f"GET {self._ready_path} answering below 500" if self._ready_path else "its port accepting connections"
        advice = f"{self._not_ready_hint}; or " if self._not_ready_hint else ""
        raise GatewayProcessError(
            f"the gateway did not get ready within {self._start_timeout:g} s (waited for {what} at {self.url}); "
            f"{advice}raise --start-timeout, or check the command and --ready-path.\n{self.quoted_output()}")

    def _ready(self) -> bool:
        if self._ready_path is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        import httpx  # here: the CLI that imports this module may never check a gateway

        try:
            return httpx.get(self.url + self._ready_path, timeout=1.0).status_code < 500
        except httpx.TransportError:
            return False

    def check_alive(self, wait: float = 0.0) -> None:
        """``GatewayProcessError`` quoting the output when the gateway has exited (or exits within ``wait``
        seconds: one that just dropped a connection may be dying)."""
        assert self._process is not None
        try:
            code = self._process.wait(timeout=wait) if wait else self._process.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            self._finish_reading()
            raise GatewayProcessError(f"the gateway exited with status {code} ({shlex.join(self.arguments)}).\n"
                                      f"{self.quoted_output()}")

    def quoted_output(self) -> str:
        lines = self.output.last()
        return quoted(lines, "Its output") if lines else "It printed nothing."

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after ``STOP_SECONDS``; the output is read to its end."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_SECONDS)
        _signal_group(process.pid, signal.SIGKILL)  # children left in the group
        self._finish_reading()

    def _finish_reading(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        if self._process is not None and self._process.stdout is not None and not (
                self._reader is not None and self._reader.is_alive()):
            self._process.stdout.close()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


# Runs before the gateway and execs it: on Linux it first asks for SIGTERM when conform dies (even by SIGKILL;
# the request survives exec). A launcher, not a preexec_fn: forking a process whose gRPC threads run makes gRPC
# complain on stderr, and Popen without preexec_fn can use vfork.
_LAUNCH = """
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        sys.exit("conform exited before the gateway started")
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as error:
    sys.exit(f"cannot run {sys.argv[1]!r}: {error.strerror or error}; check --gateway-cmd.")
"""


def _launcher() -> list[str]:
    return [sys.executable, "-c", _LAUNCH]

"""The local backend: the proxy as a subprocess, in this environment or in its own virtualenv.

``proxy_env="auto"`` runs the proxy with this interpreter when its packages are
exactly the pins of ``requirements.txt`` (this repository's dev setup), and
otherwise in the proxy's own cached virtualenv (``recorder/proxy_env.py``), so
recording never needs the pins in a gateway project's environment.

The parent binds the listening socket on 127.0.0.1 and hands it to the child
(``--fd``), so there is no race for a free port. Output goes to a temporary
log file that error messages quote. The child runs in its own process group
with an allow-listed environment, and holds a lifeline to this process, so it
dies with it on any signal (``recorder/backends/lifeline.py``). From the second
proxy alive at once in this process, proxies are forked from a server that has
already imported what every proxy imports (``recorder/backends/fork_server.py``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from typing import IO, Callable, Mapping

from testopeninference.recorder.backends import ProxyBackend, fork_server
from testopeninference.recorder.backends.environment import proxy_environment
from testopeninference.recorder.backends.lifeline import Lifeline
from testopeninference.recorder.config import Settings
from testopeninference.recorder.proxy_env import default_cache_dir, proxy_python
from testopeninference.recorder.versions import check_pinned_versions, installed_versions, read_pins, version_mismatches


class LocalBackend(ProxyBackend):
    name = "local"

    def __init__(self, settings: Settings, progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self._progress = progress or _to_stderr
        self._isolated = False
        self.python: str | None = None  # the interpreter running the proxy, once launched
        self._process: subprocess.Popen[bytes] | fork_server.ForkedProxy | None = None
        self._fork_server: fork_server.ForkServer | None = None
        self._lifeline: Lifeline | None = None
        self._log: IO[bytes] = tempfile.TemporaryFile()

    def start(self, env: Mapping[str, str]) -> str:
        url = self.launch(env)
        self.wait_ready(url)
        return url

    def wait_ready(self, url: str) -> None:
        """Wait until the proxy ``launch`` started answers ``url/health`` (``ProxyError`` if it never does)."""
        self._wait_healthy(url, "the proxy")

    def launch(self, env: Mapping[str, str]) -> str:
        """Start the proxy process and return its URL at once, while it still imports (``wait_ready``)."""
        python = self.python = self._python()
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self._lifeline = Lifeline()
        arguments = ["--convention", self.settings.convention, "--lifeline", self._lifeline.address]
        try:
            with _LIVE_LOCK:
                forked = self.settings.proxy_fork and fork_server.available() and (
                    _LIVE[0] > 0 or fork_server.running(python, self.settings.proxy_script))
                _LIVE[0] += 1
            self._process = (self._fork(python, ["--fd", "{fd}", *arguments], env, listener) if forked
                             else self._popen(python, ["--fd", str(listener.fileno()), *arguments], env, listener))
        except BaseException:
            self._count_stopped()
            raise
        finally:
            listener.close()  # the child holds its own copy
        return f"http://127.0.0.1:{port}"

    def _popen(self, python: str, arguments: list[str], env: Mapping[str, str],
               listener: socket.socket) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [python, str(self.settings.proxy_script), *arguments],
            pass_fds=(listener.fileno(),),
            env=self._environment(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.settings.proxy_script.parent,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop the proxy
        )

    def _fork(self, python: str, arguments: list[str], env: Mapping[str, str],
              listener: socket.socket) -> fork_server.ForkedProxy:
        """The proxy forked by this interpreter's fork server (started here if none runs), in a new session."""
        self._fork_server = fork_server.acquire(python, self.settings.proxy_script, self._environment({}))
        return self._fork_server.spawn(arguments, self._environment(env), listener, self._log)

    def _exit_detail(self) -> str:
        code = self._process.returncode if self._process is not None else None
        return f" (code {code})" if code is not None else ""

    def _python(self) -> str:
        """The interpreter that runs the proxy (see the module docstring)."""
        settings = self.settings
        if settings.proxy_env == "isolated" or (
            settings.proxy_env == "auto" and not settings.allow_version_mismatch
            and version_mismatches(read_pins(settings.requirements_file))
        ):
            cache = settings.cache_dir or default_cache_dir(os.environ)
            self._isolated = True
            return str(proxy_python(settings.requirements_file, cache, self._progress))
        if not settings.allow_version_mismatch:
            check_pinned_versions(settings.requirements_file)
        return sys.executable

    def _environment(self, explicit: Mapping[str, str]) -> dict[str, str]:
        """The allow-listed environment; in its own virtualenv, nothing of this interpreter's module path."""
        env = proxy_environment(explicit, os.environ)
        if self._isolated:
            for name in ISOLATED_DROPS:
                env.pop(name, None)
        return env

    def package_versions(self, names: tuple[str, ...]) -> dict[str, str]:
        """Versions the proxy runs with: the pins in its own virtualenv, else those installed here."""
        return super().package_versions(names) if self._isolated else installed_versions(names)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def logs(self) -> str:
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        if not text and self._fork_server is not None:  # never forked: the server says why
            return f"(the proxy fork server's output)\n{self._fork_server.logs()}"
        return text

    def stop(self) -> None:
        """Cut the lifeline first: the proxy exits at once on it, without uvicorn's graceful shutdown
        (a third of a second); SIGTERM, then SIGKILL, to its process group only if it is still running."""
        process, self._process = self._process, None
        if self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None
        if process is None:
            return
        try:
            try:
                process.wait(timeout=LIFELINE_EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    _signal_group(process, signal.SIGKILL)
                    process.wait()
        finally:
            self._count_stopped()

    def _count_stopped(self) -> None:
        with _LIVE_LOCK:
            _LIVE[0] -= 1
        server, self._fork_server = self._fork_server, None
        if server is not None:
            fork_server.release(server)


def prestart_fork_server(settings: Settings) -> Callable[[], None]:
    """Start the fork server of ``settings``' proxies now, in the background, for a run about to record many
    goldens (the pytest plugin re-recording all): its imports overlap the run's own start, and every proxy of the
    run, the first too, is forked. Returns the function that lets it go (it stops with its last proxy)."""
    if settings.backend != "local" or not settings.proxy_fork or not fork_server.available():
        return lambda: None
    held: list[fork_server.ForkServer] = []

    def start() -> None:
        backend = LocalBackend(settings)
        try:
            python = backend._python()
            held.append(fork_server.acquire(python, settings.proxy_script, backend._environment({})))
        except Exception:  # noqa: BLE001 - the run's first recording meets the same problem and reports it
            pass

    starting = threading.Thread(target=start, name="fork-server-start", daemon=True)
    starting.start()

    def release() -> None:
        starting.join()
        if held:
            fork_server.release(held.pop())

    return release


def _signal_group(process: subprocess.Popen[bytes] | fork_server.ForkedProxy, signum: int) -> None:
    """Signal the proxy's whole process group (it leads one), so nothing it started stays behind."""
    if isinstance(process, fork_server.ForkedProxy):
        process.signal_group(signum)
        return
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


_LIVE = [0]
"""Local proxies of this process started and not yet stopped: from the second, proxies are forked."""
_LIVE_LOCK = threading.Lock()


LIFELINE_EXIT_SECONDS = 1.0
"""How long a proxy whose lifeline was cut may take to exit before it is signalled."""

ISOLATED_DROPS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONNOUSERSITE")
"""What would put the user's packages (another ``openai``, say) in front of the proxy's pinned ones."""


def _to_stderr(line: str) -> None:
    print(f"testopeninference: {line}", file=sys.stderr, flush=True)

"""The local backend: the proxy as a subprocess, in this environment or in its own virtualenv.

``proxy_env="auto"`` runs the proxy with this interpreter when its packages are
exactly the pins of ``requirements.txt`` (this repository's dev setup), and
otherwise in the proxy's own cached virtualenv (``recorder/proxy_env.py``), so
recording never needs the pins in a gateway project's environment.

The parent binds the listening socket on 127.0.0.1 and hands it to the child
(``--fd``), so there is no race for a free port. Output goes to a temporary
log file that error messages quote. The child runs in its own process group
with an allow-listed environment, and holds a lifeline to this process, so it
dies with it on any signal (``recorder/backends/lifeline.py``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from typing import Callable, Mapping

from testopeninference.recorder.backends import ProxyBackend
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
        self._process: subprocess.Popen[bytes] | None = None
        self._lifeline: Lifeline | None = None
        self._log = tempfile.TemporaryFile()

    def start(self, env: Mapping[str, str]) -> str:
        url = self.launch(env)
        self.wait_ready(url)
        return url

    def wait_ready(self, url: str) -> None:
        """Wait until the proxy ``launch`` started answers ``url/health`` (``ProxyError`` if it never does)."""
        self._wait_healthy(url, "the proxy")

    def launch(self, env: Mapping[str, str]) -> str:
        """Start the proxy process and return its URL at once, while it still imports (``wait_ready``)."""
        python = self._python()
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self._lifeline = Lifeline()
        try:
            self._process = subprocess.Popen(
                [python, str(self.settings.proxy_script), "--fd", str(listener.fileno()),
                 "--convention", self.settings.convention, "--lifeline", self._lifeline.address],
                pass_fds=(listener.fileno(),),
                env=self._environment(env),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.settings.proxy_script.parent,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop the proxy
            )
        finally:
            listener.close()  # the child holds its own copy
        return f"http://127.0.0.1:{port}"

    def _exit_detail(self) -> str:
        return f" (code {self._process.returncode})" if self._process is not None else ""

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
        return self._log.read().decode(errors="replace")

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
            process.wait(timeout=LIFELINE_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the proxy's whole process group (it leads one), so nothing it started stays behind."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


LIFELINE_EXIT_SECONDS = 1.0
"""How long a proxy whose lifeline was cut may take to exit before it is signalled."""

ISOLATED_DROPS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONNOUSERSITE")
"""What would put the user's packages (another ``openai``, say) in front of the proxy's pinned ones."""


def _to_stderr(line: str) -> None:
    print(f"testopeninference: {line}", file=sys.stderr, flush=True)

"""The local backend: the proxy as a subprocess of the current interpreter.

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
from typing import Mapping

from testopeninference.recorder.backends import ProxyBackend
from testopeninference.recorder.backends.environment import proxy_environment
from testopeninference.recorder.backends.lifeline import Lifeline
from testopeninference.recorder.config import Settings
from testopeninference.recorder.versions import check_pinned_versions, installed_versions


class LocalBackend(ProxyBackend):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._process: subprocess.Popen[bytes] | None = None
        self._lifeline: Lifeline | None = None
        self._log = tempfile.TemporaryFile()

    def start(self, env: Mapping[str, str]) -> str:
        if not self.settings.allow_version_mismatch:
            check_pinned_versions(self.settings.requirements_file)
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self._lifeline = Lifeline()
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(self.settings.proxy_script), "--fd", str(listener.fileno()),
                 "--convention", self.settings.convention, "--lifeline", self._lifeline.address],
                pass_fds=(listener.fileno(),),
                env=proxy_environment(env, os.environ),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.settings.proxy_script.parent,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop the proxy
            )
        finally:
            listener.close()  # the child holds its own copy
        url = f"http://127.0.0.1:{port}"
        self._wait_healthy(url, "the proxy")
        return url

    def _exit_detail(self) -> str:
        return f" (code {self._process.returncode})" if self._process is not None else ""

    def package_versions(self, names: tuple[str, ...]) -> dict[str, str]:
        """Versions installed here: the pins, unless recording was allowed with others."""
        return installed_versions(names)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def logs(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the proxy's whole process group (it leads one), so nothing it started stays behind."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass

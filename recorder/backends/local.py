"""The local backend: the proxy as a subprocess of the current interpreter.

The parent binds the listening socket on 127.0.0.1 and hands it to the child
(``--fd``), so there is no race for a free port. Output goes to a temporary
log file that error messages quote.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from typing import Mapping

from recorder.backends import ProxyBackend
from recorder.config import Settings
from recorder.versions import check_pinned_versions, installed_versions

# Variables never passed to the proxy: the recorder sets what it needs.
_SCRUBBED_PREFIXES = ("OTEL_", "OPENAI_", "AZURE_OPENAI_")


class LocalBackend(ProxyBackend):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    def start(self, env: Mapping[str, str]) -> str:
        if not self.settings.allow_version_mismatch:
            check_pinned_versions(self.settings.requirements_file)
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(self.settings.proxy_script), "--fd", str(listener.fileno()),
                 "--convention", self.settings.convention],
                pass_fds=(listener.fileno(),),
                env=_child_env(env),
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.settings.proxy_script.parent,
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
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env

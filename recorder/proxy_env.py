"""The proxy's own virtualenv, so that recording never changes the user's environment.

A gateway project has its own ``openai`` and ``opentelemetry-*`` versions; the
proxy needs exactly the pins of the packaged ``requirements.txt``. The
environment is made once per hash of (pins, Python version) under the user's
cache directory, with ``uv`` when it is installed and ``venv`` + ``pip``
otherwise, and reused by every later recording. A ``.complete`` marker is
written last, so an interrupted build is detected and made again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping

from testopeninference.recorder.locks import directory_lock
from testopeninference.recorder.versions import read_pins
from testopeninference.errors import ProxyError

Progress = Callable[[str], None]

_MARKER = ".complete"
_INSTALL_TIMEOUT = 1800.0  # seconds: a cold pip install of the pins takes about a minute


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/testopeninference`` (``~/.cache`` when unset), ``~/Library/Caches`` on macOS."""
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "testopeninference"
    home = Path(environ.get("HOME") or Path.home())
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "testopeninference"
    return home / ".cache" / "testopeninference"


def environment_key(requirements: Path, purpose: str = "proxy") -> str:
    """Name of the environment for these pins and this interpreter's version (``purpose`` names its user)."""
    pins = "\n".join(f"{name}=={version}" for name, version in sorted(read_pins(requirements).items()))
    digest = hashlib.sha256(pins.encode()).hexdigest()[:16]
    return f"{purpose}-py{sys.version_info.major}{sys.version_info.minor}-{digest}"


def environment_python(directory: Path) -> Path:
    """The interpreter inside a virtualenv."""
    return directory / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def proxy_python(requirements: Path, cache_dir: Path, progress: Progress = lambda line: None,
                 purpose: str = "proxy") -> Path:
    """The Python of a virtualenv holding exactly ``requirements``' pins; made on first use.

    ``purpose`` names the program it is for (``"proxy"``; ``"litellm"`` for the LiteLLM example), so that
    environments for other requirements files sit beside the proxy's, each under its own name.
    """
    directory = Path(cache_dir) / environment_key(requirements, purpose)
    if (directory / _MARKER).is_file():
        return environment_python(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with directory_lock(directory.parent):
        if not (directory / _MARKER).is_file():  # another process may have made it meanwhile
            _make(directory, requirements, progress, purpose)
    return environment_python(directory)


def _make(directory: Path, requirements: Path, progress: Progress, purpose: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)  # a build that was interrupted
    uv = shutil.which("uv")
    progress(f"making the {purpose}'s environment (once) in {directory} with {'uv' if uv else 'venv and pip'}")
    python = environment_python(directory)
    if uv:
        steps = [
            [uv, "venv", "--quiet", "--python", sys.executable, str(directory)],
            [uv, "pip", "install", "--python", str(python), "-r", str(requirements)],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(directory)],
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
             "-r", str(requirements)],
        ]
    for command in steps:
        _run(command, progress, directory, purpose)
    (directory / _MARKER).write_text(requirements.read_text(encoding="utf-8"), encoding="utf-8")
    progress(f"the {purpose}'s environment is ready")


def _run(command: list[str], progress: Progress, directory: Path, purpose: str) -> None:
    """Run one build step, passing each line of its output to ``progress``; a failure quotes the output."""
    lines: list[str] = []
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace")
    except OSError as error:
        raise ProxyError(f"cannot make the {purpose}'s environment in {directory}: {error}.") from None
    assert process.stdout is not None
    with process:
        for line in process.stdout:
            lines.append(line.rstrip())
            progress("  " + line.rstrip())
        code = process.wait(timeout=_INSTALL_TIMEOUT)
    if code != 0:
        shutil.rmtree(directory, ignore_errors=True)
        output = "\n".join("  | " + line for line in lines[-30:])
        raise ProxyError(
            f"making the {purpose}'s environment failed ({' '.join(command[:3])} ... exited {code}):\n{output}\n"
            "Check that the package index is reachable (pip's own settings apply), then record again."
        )

"""The proxy's own virtualenv, so that recording never changes the user's environment.

A gateway project has its own ``openai`` and ``opentelemetry-*`` versions; the
proxy needs exactly the pins of the packaged ``requirements.txt``. The
environment is made once per hash of (pins, Python version) under the user's
cache directory, with ``uv`` when it is installed and ``venv`` + ``pip``
otherwise, and reused by every later recording. A ``.complete`` marker is
written last, so an interrupted build is detected and made again. The build
prints one progress line per step; pip's (or uv's) own output goes to a log
file beside the environment, quoted (its tail) only when a step fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

from testopeninference.recorder.locks import directory_lock
from testopeninference.recorder.versions import read_pins
from testopeninference.errors import ProxyError

Progress = Callable[[str], None]

_MARKER = ".complete"
_INSTALL_TIMEOUT = 1800.0  # seconds: a cold pip install of the pins takes about a minute
_TAIL_LINES = 30  # lines of a failed step's output quoted in its error


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
    """Build the environment, one progress line per step; the tools' own output goes to ``build_log``."""
    started = time.monotonic()
    shutil.rmtree(directory, ignore_errors=True)  # a build that was interrupted
    uv = shutil.which("uv")
    log = build_log(directory)
    log.write_text("", encoding="utf-8")  # this build's output only
    python = environment_python(directory)
    if uv:
        create = [uv, "venv", "--quiet", "--python", sys.executable, str(directory)]
        install = [uv, "pip", "install", "--python", str(python), "-r", str(requirements)]
    else:
        create = [sys.executable, "-m", "venv", str(directory)]
        install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
                   "-r", str(requirements)]
    progress(f"making the {purpose}'s environment (once) in {directory} with {'uv' if uv else 'venv and pip'}: "
             "creating the virtualenv")
    _run(create, log, directory, purpose)
    progress(f"installing {len(read_pins(requirements))} pinned packages (the output goes to {log})")
    _run(install, log, directory, purpose)
    (directory / _MARKER).write_text(requirements.read_text(encoding="utf-8"), encoding="utf-8")
    progress(f"the {purpose}'s environment is ready, done in {time.monotonic() - started:.1f} s")


def build_log(directory: Path) -> Path:
    """Where an environment's build output is kept: beside it (it outlives a failed build, which is removed)."""
    return directory.with_name(directory.name + ".log")


def _run(command: list[str], log: Path, directory: Path, purpose: str) -> None:
    """Run one build step, appending its output to ``log``; a failure quotes the log's tail and names it."""
    code: int | str
    try:
        with log.open("a", encoding="utf-8") as sink:
            sink.write(f"$ {' '.join(command)}\n")
            sink.flush()
            code = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, timeout=_INSTALL_TIMEOUT).returncode
    except OSError as error:
        raise ProxyError(f"cannot make the {purpose}'s environment in {directory}: {error}.") from None
    except subprocess.TimeoutExpired:  # run() has killed it
        code = f"did not finish in {_INSTALL_TIMEOUT:.0f} s"
    if code != 0:
        shutil.rmtree(directory, ignore_errors=True)
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-_TAIL_LINES:]
        output = "\n".join("  | " + line for line in tail)
        raise ProxyError(
            f"making the {purpose}'s environment failed ({' '.join(command[:3])} ... {_exit(code)}); the end of "
            f"its output (all of it in {log}):\n{output}\n"
            "Check that the package index is reachable (pip's own settings apply), then record again."
        )


def _exit(code: int | str) -> str:
    return f"exited {code}" if isinstance(code, int) else code

"""Goldens do not depend on the Python that records them: every supported interpreter writes the same bytes.

For each supported Python other than this one that is found (on PATH or under pyenv), a fresh virtual
environment gets ``-r requirements.txt -e .``, records every convention's goldens into a temporary directory,
and each file must equal the committed one in ``spans/``. Skipped, with the reason, where an interpreter is absent.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testopeninference.recorder.conventions import CONVENTIONS
from tests.helpers import PROJECT, SPANS

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
OTHERS = [version for version in SUPPORTED if version != "%d.%d" % sys.version_info[:2]]
INSTALL_TIMEOUT = 900  # seconds: a fresh venv from the package index
RECORD_TIMEOUT = 600


def find_interpreter(version: str) -> Path | None:
    """``python3.X`` on PATH if it runs (a pyenv shim may not), else the newest pyenv build of 3.X."""
    candidates = [shutil.which(f"python{version}")]
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        root = ""
    if root:
        candidates += sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"), reverse=True)
    for candidate in filter(None, candidates):
        try:
            if subprocess.run([str(candidate), "-c", ""], capture_output=True, timeout=30).returncode == 0:
                return Path(candidate)
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def clean_environment() -> dict[str, str]:
    """This environment without the settings that would redirect a recording."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESTOPENINFERENCE_", "RECORD_", "VIRTUAL_ENV"))}
    env["RECORD_BACKEND"] = "local"
    env["TESTOPENINFERENCE_LIBRARY"] = "false"  # record every golden into the temporary directory
    return env


def run(command: list, timeout: int, **kwargs) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.mark.integration
@pytest.mark.parametrize("version", OTHERS)
def test_every_supported_python_records_byte_identical_goldens(version: str, tmp_path: Path):
    interpreter = find_interpreter(version)
    if interpreter is None:
        pytest.skip(f"no Python {version} found (python{version} on PATH or a pyenv build)")
    venv = tmp_path / "venv"
    env = clean_environment()
    run([str(interpreter), "-m", "venv", str(venv)], 120, env=env)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", "requirements.txt", "-e", "."],
        INSTALL_TIMEOUT, cwd=PROJECT, env=env)
    recorded = tmp_path / "spans"
    for convention in CONVENTIONS:
        run([str(venv / "bin" / "testopeninference"), "record", "--convention", convention,
             "--spans-dir", str(recorded)], RECORD_TIMEOUT, cwd=PROJECT, env=env)
    committed = sorted(p.relative_to(SPANS) for p in SPANS.rglob("*.json"))
    written = sorted(p.relative_to(recorded) for p in recorded.rglob("*.json"))
    assert written == committed
    differing = [str(name) for name in committed if not filecmp.cmp(SPANS / name, recorded / name, shallow=False)]
    assert differing == [], f"Python {version} recorded different goldens: {differing}"

"""Making the proxy's environment: one progress line per step; pip's output goes to a log, quoted only on failure."""

from __future__ import annotations

import ensurepip
import os
import shutil
from pathlib import Path

import pytest

from testopeninference.errors import ProxyError
from testopeninference.recorder.proxy_env import build_log, environment_key, proxy_python


@pytest.fixture
def offline_pip(monkeypatch):
    """venv and pip (no uv on PATH), and pip never reaches an index: installing what is already there passes,
    anything else fails at once."""
    monkeypatch.setenv("PATH", os.pathsep.join(d for d in os.defpath.split(os.pathsep) if d and d != "."))
    if shutil.which("uv"):
        pytest.skip("uv is installed system-wide: the build would use it")
    monkeypatch.setenv("PIP_NO_INDEX", "1")


def test_a_build_prints_one_line_per_step_and_keeps_pips_output_in_a_log(tmp_path: Path, offline_pip):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"pip=={ensurepip.version()}\n", encoding="utf-8")  # in every new venv already
    lines: list[str] = []
    python = proxy_python(requirements, tmp_path / "cache", lines.append)
    assert python.is_file()
    directory = tmp_path / "cache" / environment_key(requirements)
    log = build_log(directory)
    assert lines[:2] == [f"making the proxy's environment (once) in {directory} with venv and pip: creating the "
                         "virtualenv",
                         f"installing 1 pinned packages (the output goes to {log})"]
    assert len(lines) == 3 and lines[2].startswith("the proxy's environment is ready, done in ")
    assert "Requirement already satisfied: pip" in log.read_text(encoding="utf-8")


def test_a_failed_install_quotes_the_logs_tail_and_names_the_log(tmp_path: Path, offline_pip):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("no-such-package-of-testopeninference==1.0\n", encoding="utf-8")
    lines: list[str] = []
    with pytest.raises(ProxyError) as raised:
        proxy_python(requirements, tmp_path / "cache", lines.append)
    directory = tmp_path / "cache" / environment_key(requirements)
    message = str(raised.value)
    assert f"the end of its output (all of it in {build_log(directory)}):" in message
    assert "  | ERROR: No matching distribution found for no-such-package-of-testopeninference==1.0" in message
    assert len(lines) == 2 and not directory.exists()  # no pip line on the terminal; no half-made environment

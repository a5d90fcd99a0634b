"""``mypy --strict`` is clean for the package as it is installed: ``testopeninference``, its recorder and the proxy.

The repository maps ``recorder/`` to ``testopeninference.recorder`` and ``openai_proxy.py`` to
``testopeninference.proxy.openai_proxy`` (pyproject.toml's package-dir); mypy cannot follow setuptools'
editable-install finder, so this test lays the installed layout out with symbolic links in pytest's cache
and runs mypy there, with the ``[tool.mypy]`` settings of pyproject.toml and a cache beside the links.
Skipped when mypy is not installed, except where TESTOPENINFERENCE_REQUIRE_MYPY=1 (set by .ci/run) or CI=true.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT

# The installed layout: package path -> the checkout's file or folder (pyproject.toml's package-dir; setup.py
# keeps only the proxy's modules of the top level in testopeninference.proxy).
MAPPED = {"recorder": PROJECT / "recorder",
          **{f"proxy/{name}.py": PROJECT / f"{name}.py" for name in ("openai_proxy", "anthropic_proxy", "cohere_proxy")}}


def _mypy_required() -> bool:
    return os.environ.get("TESTOPENINFERENCE_REQUIRE_MYPY") == "1" or os.environ.get("CI") == "true"


def _lay_out_package(view: Path) -> None:
    """``view/testopeninference`` as installed: links to the checkout's files (kept when right, so that two
    runs at once and mypy's cache both see a stable tree; links to files gone are removed)."""
    package = view / "testopeninference"
    wanted = {package / source.name: source for source in (PROJECT / "testopeninference").iterdir()
              if source.name != "__pycache__"}
    wanted.update({package / name: source for name, source in MAPPED.items()})
    (package / "proxy").mkdir(parents=True, exist_ok=True)
    for link in [*package.glob("*"), *package.glob("proxy/*")]:
        if link.is_symlink() and link not in wanted:
            link.unlink(missing_ok=True)
    for link, source in wanted.items():
        if link.is_symlink() and link.readlink() == source:
            continue
        link.unlink(missing_ok=True)
        try:
            link.symlink_to(source)
        except FileExistsError:  # another run made it meanwhile
            pass


def test_mypy_strict_is_clean(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        if _mypy_required():
            pytest.fail("mypy is not installed (pip install -e '.[test]'), but TESTOPENINFERENCE_REQUIRE_MYPY=1 or CI=true")
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    root = cache.mkdir("mypy") if cache is not None else tmp_path
    view = root / "view"
    _lay_out_package(view)
    command = [sys.executable, "-m", "mypy", "--config-file", str(PROJECT / "pyproject.toml"),
               "--cache-dir", str(root / "cache"), "--no-color-output", "--no-error-summary", "-p", "testopeninference"]
    result = subprocess.run(command, cwd=view, capture_output=True, text=True, timeout=600)
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"mypy --strict found errors (paths as installed: testopeninference/recorder is recorder/):\n{report}"

"""The pinned packages that shape a span, and a check that they are the ones installed.

A golden must not depend on whose machine recorded it, so the local backend
refuses to record when an installed version differs from ``requirements.txt``.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from testopeninference.errors import VersionMismatchError

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def read_pins(requirements: Path) -> dict[str, str]:
    """``name == version`` lines of a requirements file (other lines are ignored)."""
    pins = {}
    for line in Path(requirements).read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def installed_versions(names: tuple[str, ...]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def version_mismatches(pins: dict[str, str]) -> list[str]:
    """One line per pinned package whose installed version differs."""
    problems = []
    installed_now = installed_versions(tuple(pins))
    for name, pinned in sorted(pins.items()):
        installed = installed_now[name]
        if installed != pinned:
            found = installed if installed == "not installed" else f"installed {installed}"
            problems.append(f"{name}: {found}, pinned {pinned}")
    return problems


def check_pinned_versions(requirements: Path) -> None:
    """Raise ``VersionMismatchError`` listing every package that differs from its pin."""
    problems = version_mismatches(read_pins(requirements))
    if problems:
        listing = "\n  ".join(problems)
        raise VersionMismatchError(
            f"installed packages differ from {requirements}, so recorded spans could differ from everyone else's:\n"
            f"  {listing}\n"
            f"Run `pip install -r {requirements}`, let the proxy run in its own virtualenv "
            "(TESTOPENINFERENCE_PROXY_ENV=isolated), or pass --allow-version-mismatch "
            "(TESTOPENINFERENCE_ALLOW_VERSION_MISMATCH=true) to record anyway."
        )


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

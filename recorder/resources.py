"""Where the packaged cassettes, goldens and proxy files are, in a wheel or in a source checkout.

``pyproject.toml`` maps the repository's top-level folders into the
distribution: ``cassettes/`` and ``spans/`` become ``testopeninference/cassettes``
and ``testopeninference/spans``, and ``openai_proxy.py``, ``requirements.txt``
and the ``Dockerfile`` go to ``testopeninference/proxy/``. A source checkout
(or an editable install of one) keeps them at its top level.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from testopeninference.errors import ConfigurationError, repair_hint as _golden_repair_hint

_PACKAGE = Path(str(resources.files("testopeninference")))

INSTALLED = (_PACKAGE / "cassettes").is_dir()
"""True in an installed wheel: the packaged goldens are then read-only."""

ROOT = _PACKAGE if INSTALLED else _PACKAGE.parent
CASSETTES = ROOT / "cassettes"
SPANS = ROOT / "spans"
PROXY = ROOT / "proxy" if INSTALLED else ROOT
"""The folder of ``openai_proxy.py``, ``requirements.txt`` and ``Dockerfile``."""


def is_packaged(path: Path) -> bool:
    """Whether ``path`` lies inside the installed package: such files are read, never written."""
    return INSTALLED and inside(path, ROOT)


def refuse_packaged(spans_dir: Path) -> None:
    """Raise ``ConfigurationError`` when asked to write into the installed package's goldens."""
    if is_packaged(spans_dir):
        raise ConfigurationError(
            f"{spans_dir} holds the goldens installed with testopeninference, which are never written; "
            "use your own spans directory (spans-dir in [tool.testopeninference], --spans-dir or "
            "TESTOPENINFERENCE_SPANS_DIR)."
        )


def repair_hint(golden: Path | str) -> str:
    """What to do about an unreadable golden: reinstall a packaged one, re-record one's own."""
    name = Path(golden).name.removesuffix(".json").removesuffix(".logs")
    return _golden_repair_hint(name, packaged=is_packaged(Path(golden)))


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (paths made absolute, links not followed)."""
    path_text, folder_text = os.path.abspath(path), os.path.abspath(folder)
    return path_text == folder_text or path_text.startswith(folder_text.rstrip(os.sep) + os.sep)

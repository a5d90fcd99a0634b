"""Where the packaged cassettes, goldens and proxy files are, in a wheel or in a source checkout.

``pyproject.toml`` maps the repository's top-level folders into the
distribution: ``cassettes/`` and ``spans/`` become ``testopeninference/cassettes``
and ``testopeninference/spans``, and ``openai_proxy.py``, ``requirements.txt``
and the ``Dockerfile`` go to ``testopeninference/proxy/``. A source checkout
(or an editable install of one) keeps them at its top level.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE = Path(str(resources.files("testopeninference")))

INSTALLED = (_PACKAGE / "cassettes").is_dir()
"""True in an installed wheel: the packaged goldens are then read-only."""

ROOT = _PACKAGE if INSTALLED else _PACKAGE.parent
CASSETTES = ROOT / "cassettes"
SPANS = ROOT / "spans"
PROXY = ROOT / "proxy" if INSTALLED else ROOT
"""The folder of ``openai_proxy.py``, ``requirements.txt`` and ``Dockerfile``."""

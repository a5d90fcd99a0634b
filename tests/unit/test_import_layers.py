"""Imports go one way: the public API imports the recorder; the recorder imports only the errors below it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import PROJECT

ALLOWED_FROM_RECORDER = ("testopeninference.errors", "testopeninference.recorder")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_recorder_module_imports_the_public_api():
    offenders = [
        f"{path.relative_to(PROJECT)} imports {name}"
        for path in sorted((PROJECT / "recorder").rglob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] == "testopeninference" and not name.startswith(ALLOWED_FROM_RECORDER)
    ]
    assert offenders == []


def test_nothing_imports_the_repository_layout_names():
    """Only ``testopeninference`` is importable from an installed wheel: no ``recorder`` or ``openai_proxy`` imports."""
    sources = [*(PROJECT / "recorder").rglob("*.py"), *(PROJECT / "testopeninference").rglob("*.py")]
    offenders = [
        f"{path.relative_to(PROJECT)} imports {name}"
        for path in sorted(sources)
        for name in _imports(path)
        if name.split(".")[0] in {"recorder", "openai_proxy"}
    ]
    assert offenders == []

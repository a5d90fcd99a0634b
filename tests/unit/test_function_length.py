"""Functions stay short: none in the package is over 40 lines, so each one does one thing (issue 13).

Counted from the ``def`` line to the function's last line, docstring included, decorators not.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import PROJECT

MAX_LINES = 40

# Add nothing here: split the function instead.
ALLOWED: set[str] = set()


def _package_sources() -> list[Path]:
    return sorted([*(PROJECT / "testopeninference").rglob("*.py"), *(PROJECT / "recorder").rglob("*.py"),
                   PROJECT / "openai_proxy.py"])


def _long_functions(path: Path, where: str) -> list[str]:
    """``where:line name has N lines`` for each function over the limit and not allowed (``where``: the path)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_LINES and f"{where}:{node.name}" not in ALLOWED and f"{where}:*" not in ALLOWED:
                found.append(f"{where}:{node.lineno} {node.name} has {length} lines")
    return found


def test_no_function_in_the_package_is_over_40_lines() -> None:
    found = [entry for path in _package_sources() for entry in _long_functions(path, path.relative_to(PROJECT).as_posix())]
    assert found == [], "split these by what they do:\n" + "\n".join(found)


def test_the_check_finds_a_long_function_and_keeps_the_allow_list_narrow(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    source.write_text(f"def long_one() -> None:\n{body}\n\ndef create_app() -> None:\n{body}\n", encoding="utf-8")
    assert _long_functions(source, "recorder/probe.py") == [
        f"recorder/probe.py:1 long_one has {MAX_LINES + 1} lines",
        f"recorder/probe.py:{MAX_LINES + 3} create_app has {MAX_LINES + 1} lines",
    ]
    assert _long_functions(source, "recorder/session.py") == []

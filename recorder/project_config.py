"""The ``[tool.testopeninference]`` table of the nearest ``pyproject.toml``.

Gateway repositories configure tools in ``pyproject.toml`` (pytest, ruff and
syrupy read it too). The table sits between environment variables and the
packaged defaults; relative paths in it are relative to the file.

    [tool.testopeninference]
    cassettes-dir = "tests/cassettes"
    spans-dir = "tests/spans"
    convention = "openinference"
    library = true          # the packaged cassettes and goldens beside your own
    ignore-body-keys = ["stream", "tools.*.strict"]  # request body keys the fake server tolerates
"""

from __future__ import annotations

import functools
import sys
from typing import Any
from pathlib import Path

from testopeninference.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PATH_KEYS = {"cassettes-dir": "cassettes_dir", "spans-dir": "spans_dir", "cache-dir": "cache_dir"}
TEXT_KEYS = {"convention": "convention", "backend": "backend", "proxy-env": "proxy_env"}
OTHER_KEYS: dict[str, tuple[str, type | tuple[type, ...]]] = {"span-timeout": ("span_timeout", (int, float)), "library": ("library", bool)}
LIST_KEYS = {"ignore-body-keys": "ignore_body_keys"}
_MAX_BYTES = 4 * 1024 * 1024  # a pyproject.toml is a few kB; refuse to parse something else


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at ``start`` or above it."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def project_settings(start: Path) -> dict[str, object]:
    """``Settings`` field values from the nearest table, and ``root``: the folder of that ``pyproject.toml``
    (``start`` when there is none), where a gateway repository keeps its own ``cassettes/`` and ``spans/``."""
    path = find_pyproject(start)
    if path is None:
        return {"root": Path(start).resolve()}
    stat = path.stat()
    return {"root": path.parent, **_table_values(path, stat.st_mtime_ns, stat.st_size)}


@functools.lru_cache(maxsize=16)
def _table_values(path: Path, mtime_ns: int, size: int) -> dict[str, object]:
    """Parsed once per version of the file (``get_span`` may run thousands of times)."""
    table = _read(path).get("tool", {}).get("testopeninference", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [tool.testopeninference] must be a table.")
    values: dict[str, object] = {}
    for key, value in table.items():
        if key in PATH_KEYS:
            values[PATH_KEYS[key]] = path.parent / _text(path, key, value)
        elif key in TEXT_KEYS:
            values[TEXT_KEYS[key]] = _text(path, key, value).lower() if key != "convention" else _text(path, key, value)
        elif key in OTHER_KEYS:
            field, kind = OTHER_KEYS[key]
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise ConfigurationError(f"{path}: [tool.testopeninference] {key} has the wrong type ({value!r}).")
            if field == "span_timeout" and isinstance(value, (int, float)) and value <= 0:
                raise ConfigurationError(f"{path}: [tool.testopeninference] span-timeout must be a positive number.")
            values[field] = value
        elif key in LIST_KEYS:
            values[LIST_KEYS[key]] = _text_list(path, key, value)
        else:
            valid = ", ".join(sorted({*PATH_KEYS, *TEXT_KEYS, *OTHER_KEYS, *LIST_KEYS}))
            raise ConfigurationError(f"{path}: unknown key {key!r} in [tool.testopeninference]; valid keys: {valid}.")
    return values


def _read(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
        if len(data) > _MAX_BYTES:
            raise ConfigurationError(f"{path}: larger than {_MAX_BYTES // 1024 // 1024} MiB; is it a pyproject.toml?")
        return tomllib.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"{path}: cannot read it as TOML ({error}); fix the file.") from None


def _text(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{path}: [tool.testopeninference] {key} must be a non-empty string.")
    return value.strip()


def _text_list(path: Path, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ConfigurationError(f"{path}: [tool.testopeninference] {key} must be a list of non-empty strings.")
    return tuple(item.strip() for item in value)

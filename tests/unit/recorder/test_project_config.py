"""Settings from a gateway repository's pyproject.toml: [tool.testopeninference], below arguments and environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from testopeninference.recorder.config import Settings
from testopeninference.errors import ConfigurationError

TABLE = """
[project]
name = "my-gateway"

[tool.testopeninference]
cassettes-dir = "tests/cassettes"
spans-dir = "tests/spans"
convention = "otel-genai"
span-timeout = 12
library = false
"""


def project(tmp_path: Path, text: str = TABLE) -> Path:
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    return nested


def test_the_nearest_table_is_read_with_paths_relative_to_the_file(tmp_path: Path):
    settings = Settings.from_env({}, start=project(tmp_path))
    assert settings.cassettes_dir == tmp_path / "tests" / "cassettes"
    assert settings.spans_dir == tmp_path / "tests" / "spans"
    assert (settings.convention, settings.span_timeout, settings.library) == ("otel-genai", 12, False)


def test_environment_and_arguments_win_over_the_table(tmp_path: Path):
    start = project(tmp_path)
    env = {"TESTOPENINFERENCE_CONVENTION": "openllmetry", "TESTOPENINFERENCE_SPANS_DIR": "/elsewhere"}
    settings = Settings.from_env(env, start=start, spans_dir=tmp_path / "argument")
    assert settings.convention == "openllmetry"
    assert settings.spans_dir == tmp_path / "argument"
    assert settings.cassettes_dir == tmp_path / "tests" / "cassettes"


def test_no_table_keeps_the_defaults(tmp_path: Path):
    start = project(tmp_path, '[project]\nname = "x"\n')
    assert Settings.from_env({}, start=start).convention == Settings().convention


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[tool.testopeninference]\nspans_dirr = "x"\n', "unknown key 'spans_dirr'"),
        ("[tool.testopeninference]\nspan-timeout = \"soon\"\n", "span-timeout has the wrong type"),
        ("[tool.testopeninference]\nlibrary = 1\n", "library has the wrong type"),
        ("[tool.testopeninference]\nspan-timeout = -1\n", "must be a positive number"),
        ("[tool.testopeninference]\nproxy-env = \"nowhere\"\n", "TESTOPENINFERENCE_PROXY_ENV='nowhere' is not valid"),
        ("[tool.testopeninference\n", "cannot read it as TOML"),
        ("[tool]\ntestopeninference = 3\n", "must be a table"),
    ],
)
def test_a_bad_table_is_one_configuration_error_naming_the_file(tmp_path: Path, text: str, expected: str):
    start = project(tmp_path, text)
    with pytest.raises(ConfigurationError, match=expected) as raised:
        Settings.from_env({}, start=start)
    assert "not valid" in expected or str(tmp_path / "pyproject.toml") in str(raised.value)


def test_a_pyproject_that_is_not_utf8_is_one_configuration_error(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.testopeninference]\nconvention = \"\xff\"\n")
    with pytest.raises(ConfigurationError, match="cannot read it as TOML"):
        Settings.from_env({}, start=tmp_path)


def test_an_edited_table_is_seen_at_once(tmp_path: Path):
    start = project(tmp_path)
    assert Settings.from_env({}, start=start).convention == "otel-genai"
    (tmp_path / "pyproject.toml").write_text(TABLE.replace("otel-genai", "openllmetry-events") + "\n")
    assert Settings.from_env({}, start=start).convention == "openllmetry-events"


def test_ignore_body_keys_come_from_the_table(tmp_path: Path):
    start = project(tmp_path, '[tool.testopeninference]\nignore-body-keys = ["stream", " tools.*.strict "]\n')
    assert Settings.from_env({}, start=start).ignore_body_keys == ("stream", "tools.*.strict")


@pytest.mark.parametrize("value", ['"stream"', "[1]", '[""]'])
def test_ignore_body_keys_must_be_a_list_of_strings(tmp_path: Path, value: str):
    start = project(tmp_path, f"[tool.testopeninference]\nignore-body-keys = {value}\n")
    with pytest.raises(ConfigurationError, match="ignore-body-keys must be a list of non-empty strings"):
        Settings.from_env({}, start=start)

from pathlib import Path

import pytest

from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder.versions import check_pinned_versions, read_pins, version_mismatches
from testopeninference.errors import ConfigurationError, VersionMismatchError


@pytest.mark.parametrize(
    ("text", "mode"),
    [("true", RecordMode.MISSING), ("TRUE", RecordMode.MISSING), ("1", RecordMode.MISSING),
     ("false", RecordMode.NONE), ("", RecordMode.NONE), ("all", RecordMode.ALL)],
)
def test_record_spans_spellings(text: str, mode: RecordMode):
    assert Settings.from_env({"RECORD_SPANS": text}).record_mode is mode


def test_record_spans_typo_lists_valid_values():
    with pytest.raises(ConfigurationError, match="RECORD_SPANS='ture' is not valid; use one of: "):
        Settings.from_env({"RECORD_SPANS": "ture"})


def test_arguments_win_over_environment_over_defaults(tmp_path: Path):
    env = {"TESTOPENINFERENCE_SPANS_DIR": str(tmp_path / "env"), "TESTOPENINFERENCE_CASSETTES_DIR": "c"}
    settings = Settings.from_env(env, spans_dir=tmp_path / "arg", cassettes_dir=None)
    assert settings.spans_dir == tmp_path / "arg"
    assert settings.cassettes_dir == Path("c")
    assert Settings.from_env({}).spans_dir == Settings().spans_dir


def test_span_timeout_must_be_positive():
    with pytest.raises(ConfigurationError, match="must be a positive number of seconds"):
        Settings.from_env({"TESTOPENINFERENCE_SPAN_TIMEOUT": "soon"})
    assert Settings.from_env({"TESTOPENINFERENCE_SPAN_TIMEOUT": "2.5"}).span_timeout == 2.5


def test_pins_are_read_and_checked(tmp_path: Path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\nPyYAML==0.0.1\nhttpx >= 0.1\nno-such-package-xyz==1.0\n")
    assert read_pins(requirements) == {"pyyaml": "0.0.1", "no-such-package-xyz": "1.0"}
    problems = version_mismatches(read_pins(requirements))
    assert problems[0] == "no-such-package-xyz: not installed, pinned 1.0"
    assert problems[1].startswith("pyyaml: installed ")
    with pytest.raises(VersionMismatchError, match="--allow-version-mismatch") as raised:
        check_pinned_versions(requirements)
    assert "pip install -r" in str(raised.value)


def test_project_requirements_are_all_pinned():
    text = Settings().requirements_file.read_text()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert len(read_pins(Settings().requirements_file)) == len(lines)


@pytest.mark.parametrize(("text", "on"), [("false", False), ("0", False), ("true", True), ("1", True)])
def test_the_grpc_receiver_is_on_unless_the_setting_turns_it_off(text: str, on: bool):
    assert Settings.from_env({}).grpc is True
    assert Settings.from_env({"TESTOPENINFERENCE_GRPC": text}).grpc is on


def test_anthropic_and_cohere_upstreams_come_from_their_own_variables():
    assert Settings.from_env({}).upstream.anthropic_base_url == "https://api.anthropic.com"
    assert Settings.from_env({}).upstream.cohere_base_url == "https://api.cohere.com"
    assert not Settings.from_env({}).upstream.enabled
    env = {"ANTHROPIC_API_KEY": "sk-ant-x1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/a",
           "CO_API_KEY": "co-x2", "CO_API_URL": "http://127.0.0.1:9/c"}
    upstream = Settings.from_env(env).upstream
    assert (upstream.anthropic_api_key, upstream.anthropic_base_url) == ("sk-ant-x1", "http://127.0.0.1:9/a")
    assert (upstream.cohere_api_key, upstream.cohere_base_url) == ("co-x2", "http://127.0.0.1:9/c")
    assert upstream.enabled and Settings.from_env({"CO_API_KEY": "co-x2"}).upstream.enabled
    assert "sk-ant-x1" not in repr(upstream) and "co-x2" not in repr(upstream)
    assert {"sk-ant-x1", "co-x2"} <= set(upstream.secrets)

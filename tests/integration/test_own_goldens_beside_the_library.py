"""A gateway repository's own cassettes and goldens beside the packaged library, and the proxy's own virtualenv."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest

from testopeninference import GoldenSpanMissingError, get_span
from testopeninference.cli import main
from testopeninference.recorder.config import Settings
from testopeninference.recorder.proxy_env import environment_key
from testopeninference.recorder.session import SpanRecorder
from tests.helpers import CASSETTES, SPANS


@pytest.fixture
def gateway_repo(tmp_path: Path, monkeypatch) -> Path:
    """A gateway repository with one cassette of its own and the packaged library in use."""
    monkeypatch.setenv("TESTOPENINFERENCE_LIBRARY", "true")
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    text = (CASSETTES / "chat-basic.yaml").read_text(encoding="utf-8")
    (cassettes / "chat-my-gateway.yaml").write_text(text.replace("description: ", "description: Mine. ", 1))
    return tmp_path


def test_packaged_goldens_serve_until_the_user_records_their_own(gateway_repo: Path):
    dirs = {"cassettes_dir": gateway_repo / "cassettes", "spans_dir": gateway_repo / "spans"}
    assert get_span("chat-basic", **dirs) == get_span("chat-basic")  # the packaged golden, nothing written
    assert not (gateway_repo / "spans").exists()
    with pytest.raises(GoldenSpanMissingError) as raised:
        get_span("chat-my-gateway", **dirs)
    message = str(raised.value)
    assert str(gateway_repo / "spans" / "chat-my-gateway.json") in message
    assert f"testopeninference record --spans-dir {gateway_repo / 'spans'} chat-my-gateway" in message
    assert "--record-spans" in message
    assert get_span("chat-my-gateway", record=True, **dirs).name == "ChatCompletion"
    assert (gateway_repo / "spans" / "chat-my-gateway.json").read_bytes() == (SPANS / "chat-basic.json").read_bytes()


def test_a_users_cassette_of_a_packaged_name_wins_and_gets_its_own_golden(gateway_repo: Path):
    shutil.copy(gateway_repo / "cassettes" / "chat-my-gateway.yaml", gateway_repo / "cassettes" / "chat-basic.yaml")
    dirs = {"cassettes_dir": gateway_repo / "cassettes", "spans_dir": gateway_repo / "spans"}
    with pytest.raises(GoldenSpanMissingError):  # the packaged golden belongs to the packaged cassette
        get_span("chat-basic", **dirs)
    get_span("chat-basic", record=True, **dirs)
    assert (gateway_repo / "spans" / "chat-basic.json").is_file()


def test_list_says_where_each_golden_comes_from(gateway_repo: Path):
    out = StringIO()
    dirs = ["--cassettes-dir", str(gateway_repo / "cassettes"), "--spans-dir", str(gateway_repo / "spans")]
    assert main(["record", *dirs, "chat-my-gateway"], out=out, err=StringIO()) == 0
    out = StringIO()
    assert main(["list", *dirs], out=out, err=StringIO()) == 0
    rows = {line.split()[0]: line.split()[2:4] for line in out.getvalue().splitlines()[1:] if line[:1] != " "}
    assert rows["chat-my-gateway"] == ["present", "project"]
    assert rows["chat-basic"] == ["present", "package"]
    assert len(rows) == len(list(CASSETTES.glob("*.yaml"))) + 1


def test_the_proxy_runs_in_its_own_virtualenv_made_once(tmp_path: Path, capfd, monkeypatch):
    shadow = tmp_path / "shadow"  # the user's module path must not reach the proxy's own environment
    (shadow / "openai").mkdir(parents=True)
    (shadow / "openai" / "__init__.py").write_text("raise ImportError('the user PYTHONPATH reached the proxy')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow))
    cache = tmp_path / "cache"
    settings = Settings(spans_dir=tmp_path / "spans", proxy_env="isolated", cache_dir=cache)
    with SpanRecorder(settings) as recorder:
        result = recorder.record("embeddings-basic")
        python = recorder._backend.python  # noqa: SLF001
    made = capfd.readouterr().err
    assert "making the proxy's environment (once)" in made and "the proxy's environment is ready" in made
    environment = cache / environment_key(settings.requirements_file)
    assert Path(python).parent.parent == environment and (environment / ".complete").is_file()
    assert result.path.read_bytes() == (SPANS / "embeddings-basic.json").read_bytes()
    with SpanRecorder(settings) as recorder:  # made once: the second session reuses it
        recorder.record("embeddings-basic", force=True)
    assert "making the proxy's environment" not in capfd.readouterr().err
    assert result.path.read_bytes() == (SPANS / "embeddings-basic.json").read_bytes()


def test_a_broken_proxy_environment_build_is_one_error_and_leaves_nothing(tmp_path: Path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("no-such-package-testopeninference==0.0.1\n")
    cache = tmp_path / "cache"
    settings = Settings(spans_dir=tmp_path / "spans", proxy_env="isolated", cache_dir=cache,
                        requirements_file=requirements)
    from testopeninference import ProxyError

    with pytest.raises(ProxyError, match="making the proxy's environment failed") as raised:
        SpanRecorder(settings).start()
    assert "no-such-package-testopeninference" in str(raised.value)
    assert not (cache / environment_key(requirements)).exists()

"""Virtualenvs for other requirements files (the LiteLLM example's) sit beside the proxy's, under their own name."""

from __future__ import annotations

from pathlib import Path

from testopeninference.recorder.proxy_env import environment_key


def test_environment_key_names_its_purpose_and_keeps_the_proxys_name(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("litellm==1.109.3\n", encoding="utf-8")
    proxy, litellm = environment_key(requirements), environment_key(requirements, "litellm")
    assert proxy.startswith("proxy-py")
    assert litellm.startswith("litellm-py")
    assert proxy.split("-", 1)[1] == litellm.split("-", 1)[1]  # same pins and Python, another name

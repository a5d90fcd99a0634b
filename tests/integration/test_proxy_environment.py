"""The local proxy process sees an allow-listed environment: no secret of this machine reaches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from testopeninference.recorder.config import Settings
from testopeninference.recorder.session import SpanRecorder
from tests.helpers import CASSETTES

SECRETS = {"ANTHROPIC_API_KEY": "sk-ant-planted1", "AWS_SECRET_ACCESS_KEY": "aws-planted2",
           "AZURE_CLIENT_SECRET": "azure-planted3", "GITHUB_TOKEN": "ghp_planted4", "HF_TOKEN": "hf_planted5",
           "CO_API_KEY": "co-planted6"}


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_no_secret_variable_reaches_the_local_proxy(tmp_path: Path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with SpanRecorder(Settings(cassettes_dir=CASSETTES, spans_dir=tmp_path)) as recorder:
        recorder.record("chat-basic")
        pid = recorder._backend._process.pid  # noqa: SLF001
        names = dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if item)
    assert not {name.encode() for name in SECRETS} & names.keys()
    assert not [value for value in SECRETS.values() if value.encode() in b"".join(names.values())]
    assert b"PATH" in names and names[b"OPENAI_API_KEY"] != b""  # what it needs: PATH and the placeholder key

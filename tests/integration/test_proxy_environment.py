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


def _environ(pid: int) -> dict[bytes, bytes]:
    """The environment a process was started with (a forked proxy's is its fork server's)."""
    return dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if item)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("forked", [False, True], ids=["started alone", "forked"])
def test_no_secret_variable_reaches_the_local_proxy(tmp_path: Path, monkeypatch, forked: bool):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = Settings(cassettes_dir=CASSETTES, spans_dir=tmp_path, proxy_fork=forked)
    with SpanRecorder(settings) as other, SpanRecorder(settings) as recorder:  # the second one is forked if allowed
        recorder.record("chat-basic")
        processes = [recorder._backend._process, other._backend._process]  # noqa: SLF001
        server = recorder._backend._fork_server  # noqa: SLF001
        environments = [_environ(p.pid) for p in processes] + ([_environ(server._process.pid)] if server else [])  # noqa: SLF001
    assert (server is not None) == forked
    for names in environments:
        assert not {name.encode() for name in SECRETS} & names.keys()
        assert not [value for value in SECRETS.values() if value.encode() in b"".join(names.values())]
        assert b"PATH" in names
    if not forked:  # what it needs: the placeholder key (a forked proxy gets it after the fork, unseen here)
        assert environments[0][b"OPENAI_API_KEY"] != b""

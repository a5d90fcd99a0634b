"""``conform -k``: substring terms, fnmatch patterns, and/or/not and parentheses; a malformed one is a usage error."""

from __future__ import annotations

import pytest

from testopeninference.conform.selection import parse_selection
from testopeninference.errors import ConformUsageError

CASSETTES = [("chat-basic", "chat"), ("azure-chat-basic", "chat"), ("chat-streaming", "chat"),
             ("embeddings-basic", "embeddings"), ("completion-basic", "completion")]


@pytest.mark.parametrize(("expression", "chosen"), [
    ("", ["chat-basic", "azure-chat-basic", "chat-streaming", "embeddings-basic", "completion-basic"]),
    ("chat-basic", ["chat-basic", "azure-chat-basic"]),
    ("chat-basic and not azure", ["chat-basic"]),
    ("embeddings", ["embeddings-basic"]),
    ("chat and not (streaming or azure)", ["chat-basic"]),
    ("*-basic and not chat", ["embeddings-basic", "completion-basic"]),
    ("chat-* or completion", ["chat-basic", "chat-streaming", "completion-basic"]),
    ("not not embeddings", ["embeddings-basic"]),
])
def test_selection_by_name_or_endpoint(expression: str, chosen: list[str]):
    wanted = parse_selection(expression)
    assert [name for name, endpoint in CASSETTES if wanted(name, endpoint)] == chosen


@pytest.mark.parametrize(("expression", "problem"), [
    ("chat and", "the expression ends where a term was expected"),
    ("(chat or embeddings", "a '(' is not closed"),
    ("chat embeddings", "unexpected 'embeddings'"),
    ("or chat", "unexpected 'or' where a term was expected"),
    ("chat )", "unexpected ')'"),
])
def test_a_malformed_selection_is_a_usage_error_saying_where(expression: str, problem: str):
    with pytest.raises(ConformUsageError) as raised:
        parse_selection(expression)
    assert str(raised.value).startswith(f"-k {expression!r}: {problem}; write terms")


def test_a_broken_cassette_does_not_stop_choosing_the_others(tmp_path):
    from testopeninference.conform.run import chosen_cassettes
    from testopeninference.recorder.config import Settings

    (tmp_path / "cassettes").mkdir()
    (tmp_path / "cassettes" / "chat-broken.yaml").write_text("version: 2\ninteractions: [\n")
    settings = Settings.from_env(cassettes_dir=tmp_path / "cassettes", spans_dir=tmp_path / "spans")
    assert chosen_cassettes(settings, "chat-basic and not azure") == [("chat-basic", "chat")]

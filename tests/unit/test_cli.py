from io import StringIO
from pathlib import Path

import pytest

from testopeninference.cli import main
from tests.helpers import CASSETTES


def run(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_list_shows_endpoint_and_golden_status(tmp_path: Path):
    (tmp_path / "chat-basic.json").write_text("{}")
    code, out, _ = run("list", "--spans-dir", str(tmp_path))
    assert code == 0
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()}
    assert rows["chat-basic"] == ["chat", "present"]
    assert rows["embeddings-basic"] == ["embeddings", "missing"]
    assert len(rows) == len(list(CASSETTES.glob("*.yaml")))


def test_record_with_nothing_missing_starts_no_proxy(tmp_path: Path):
    (tmp_path / "chat-basic.json").write_text("{}")
    code, out, _ = run("record", "--spans-dir", str(tmp_path), "chat-basic")
    assert code == 0
    assert out.splitlines()[0] == "present   chat-basic"
    assert out.splitlines()[1].startswith("0 recorded, 1 present, ")


def test_invalid_cassette_name_is_one_error_line(tmp_path: Path):
    code, _, err = run("record", "--spans-dir", str(tmp_path), "../secrets")
    assert code == 1
    assert err.startswith("Error: invalid cassette name '../secrets'") and err.count("\n") == 1


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as raised:
        run("frobnicate")
    assert raised.value.code == 2


def test_help_everywhere(capsys):
    for argv in (["--help"], ["record", "--help"], ["list", "--help"]):
        with pytest.raises(SystemExit) as raised:
            main(argv)
        assert raised.value.code == 0
    assert "--cassettes-dir" in capsys.readouterr().out

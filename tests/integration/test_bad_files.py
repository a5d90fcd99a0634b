"""Bad files where a cassette or golden is expected: one typed error naming the file, from the API and the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest

from testopeninference import get_chat_span, get_log_records, get_span, span_differences
from testopeninference.cli import main
from testopeninference.errors import InvalidCassetteError, InvalidGoldenSpanError
from tests.helpers import CASSETTES, SPANS

DEEP_JSON = "[" * 100_000 + "]" * 100_000


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def assert_one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code == 1, err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    cassettes, spans = tmp_path / "cassettes", tmp_path / "spans"
    cassettes.mkdir()
    spans.mkdir()
    for name in ("chat-basic", "embeddings-basic"):
        shutil.copy(CASSETTES / f"{name}.yaml", cassettes)
        shutil.copy(SPANS / f"{name}.json", spans)
    return cassettes, spans


BAD_GOLDENS = {
    "not-utf8": lambda path: path.write_bytes(b'{"name": "\xff\xfe"}'),
    "deeply-nested": lambda path: path.write_text('{"name": "x", "attributes": ' + DEEP_JSON + "}"),
    "directory": lambda path: (path.unlink(), path.mkdir()),
}


@pytest.mark.parametrize("bad", list(BAD_GOLDENS))
def test_a_bad_golden_is_one_typed_error_from_the_api_and_the_cli(dirs, bad: str):
    cassettes, spans = dirs
    golden = spans / "chat-basic.json"
    BAD_GOLDENS[bad](golden)
    for read in (get_span, get_chat_span):
        with pytest.raises(InvalidGoldenSpanError, match="chat-basic.json"):
            read("chat-basic", cassettes_dir=cassettes, spans_dir=spans, record=False)
    with pytest.raises(InvalidGoldenSpanError, match="chat-basic.json"):
        span_differences(golden, SPANS / "chat-basic.json")
    dirs_args = ("--cassettes-dir", str(cassettes), "--spans-dir", str(spans))
    assert_one_error_line(*cli("show", "chat-basic", *dirs_args)[::2], "chat-basic.json")
    assert_one_error_line(*cli("diff", "chat-basic", str(SPANS / "chat-basic.json"), *dirs_args)[::2], "chat-basic.json")
    assert_one_error_line(*cli("diff", str(SPANS / "chat-basic.json"), str(golden))[::2], "chat-basic.json")


def test_bad_golden_log_records_are_one_typed_error(dirs):
    cassettes, spans = dirs
    folder = spans / "otel-genai-events"
    folder.mkdir()
    shutil.copy(SPANS / "otel-genai-events" / "chat-basic.json", folder)
    for bad in BAD_GOLDENS.values():
        logs = folder / "chat-basic.logs.json"
        if logs.is_dir():
            logs.rmdir()
        logs.write_text("{}")
        bad(logs)
        with pytest.raises(InvalidGoldenSpanError, match="chat-basic.logs.json"):
            get_log_records("chat-basic", convention="otel-genai-events", cassettes_dir=cassettes, spans_dir=spans,
                            record=False)


BAD_CASSETTES = {
    "not-utf8": lambda path: path.write_bytes(path.read_bytes().replace(b"description: ", b"description: \xff")),
    "deeply-nested-body": lambda path: path.write_text(
        path.read_text().replace("body: |", "body: '" + DEEP_JSON + "'\n        unused: |", 1)),
    "directory": lambda path: (path.unlink(), path.mkdir()),
}


@pytest.mark.parametrize("bad", list(BAD_CASSETTES))
def test_a_bad_cassette_is_one_typed_error_from_the_api_and_the_cli(dirs, bad: str):
    cassettes, spans = dirs
    BAD_CASSETTES[bad](cassettes / "chat-basic.yaml")
    with pytest.raises(InvalidCassetteError, match="chat-basic.yaml"):
        get_span("chat-basic", cassettes_dir=cassettes, spans_dir=spans, record=False)
    dirs_args = ("--cassettes-dir", str(cassettes), "--spans-dir", str(spans))
    assert_one_error_line(*cli("show", "chat-basic", *dirs_args)[::2], "chat-basic.yaml")
    for command, marked in ((("list",), "broken"), (("record", "chat-basic"), "failed    chat-basic: ")):
        code, out, err = cli(*command, *dirs_args)  # the others go on; the broken one is marked, then exit 1
        assert code == 1 and not err, err
        assert marked in out and "chat-basic.yaml" in out, out


def test_a_name_too_long_is_refused_up_front(dirs):
    cassettes, spans = dirs
    name = "c" * 300
    with pytest.raises(InvalidCassetteError, match="300 characters"):
        get_span(name, cassettes_dir=cassettes, spans_dir=spans)
    dirs_args = ("--cassettes-dir", str(cassettes), "--spans-dir", str(spans))
    for command in (("show", name), ("diff", name, str(SPANS / "chat-basic.json")), ("record", name)):
        assert_one_error_line(*cli(*command, *dirs_args)[::2], "at most 200")


def test_a_golden_linked_from_outside_the_spans_directory_is_one_typed_error(dirs, tmp_path: Path):
    cassettes, spans = dirs
    outside = tmp_path / "elsewhere.json"
    shutil.move(spans / "chat-basic.json", outside)
    (spans / "chat-basic.json").symlink_to(outside)
    code, _, err = cli("list", "--cassettes-dir", str(cassettes), "--spans-dir", str(spans))
    assert_one_error_line(code, err, "chat-basic.json", "outside the spans directory")


BILLION_LAUGHS = "\n".join(
    ["---", "version: 2", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    + ["description: *a9", "interactions: []", ""]
)


def run_bounded(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a child limited to 1 GiB of memory and 60 s, so an old bomb cannot hurt the machine."""
    prelude = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_a_yaml_alias_bomb_in_a_cassette_is_refused_with_file_and_line(dirs):
    cassettes, _ = dirs
    (cassettes / "chat-bomb.yaml").write_text(BILLION_LAUGHS)
    result = run_bounded(
        "from pathlib import Path\n"
        "from testopeninference.recorder.cassette import load_cassette\n"
        "from testopeninference.errors import InvalidCassetteError\n"
        "try:\n"
        f"    load_cassette(Path({str(cassettes / 'chat-bomb.yaml')!r}))\n"
        "except InvalidCassetteError as error:\n"
        "    print(error)\n",
        Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"{cassettes / 'chat-bomb.yaml'}:3: YAML anchor '&a0' is not allowed")
    assert "write the value out in full" in result.stdout


def test_a_yaml_alias_in_the_manifest_is_refused_with_file_and_line(dirs):
    cassettes, spans = dirs
    (spans / "manifest.yaml").write_text(
        "goldens:\n  chat-basic.json: &entry {cassette_sha256: x, versions: v}\n  embeddings-basic.json: *entry\n"
        "versions: {v: {}}\n"
    )
    code, _, err = cli("list", "--cassettes-dir", str(cassettes), "--spans-dir", str(spans))
    assert_one_error_line(code, err, f"{spans / 'manifest.yaml'}:2: YAML anchor '&entry' is not allowed")

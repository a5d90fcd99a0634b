"""The README's gateway pattern runs as written: its conftest.py, pyproject.toml and test file, copied
verbatim into a fresh project with the example gateway, pass in a real pytest run (pytester)."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.helpers import PROJECT

SECTION = "## Testing a gateway against the goldens"


def readme_files() -> dict[str, str]:
    """The section's code blocks whose first line names a file (``# conftest.py: ...``), by file name."""
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    files = {}
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", section, flags=re.DOTALL):
        named = re.match(r"# ([\w.]+\.(?:py|toml))\b", block)
        if named:
            files[named.group(1)] = block
    return files


def test_the_readme_names_the_three_files_of_the_pattern():
    assert sorted(readme_files()) == ["conftest.py", "pyproject.toml", "test_my_gateway.py"]


def test_the_readme_gateway_pattern_passes_against_the_example_gateway(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(PROJECT / "cassettes"))
    monkeypatch.setenv("TESTOPENINFERENCE_SPANS_DIR", str(PROJECT / "spans"))
    monkeypatch.delenv("RECORD_SPANS", raising=False)
    for name, text in readme_files().items():
        (pytester.path / name).write_text(text, encoding="utf-8")
    (pytester.path / "examples" / "gateway").mkdir(parents=True)
    shutil.copy(PROJECT / "examples" / "gateway" / "gateway.py", pytester.path / "examples" / "gateway")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([
        "*- testopeninference -*",
        "trace *: picked 'ChatCompletion' scope=openinference.instrumentation.openai kind=SPAN_KIND_INTERNAL "
        "by openinference.span.kind=LLM; 2 other span(s) of the trace received",
    ])
    result.stdout.fnmatch_lines(["testopeninference: request body keys the fake OpenAI server tolerated: stream"])

"""The README's gateway pattern runs as written: its conftest.py, pyproject.toml and test file, copied
verbatim into a fresh project (a temporary directory, not the checkout) with the example gateway beside the
conftest, pass in a real pytest run (pytester); a gateway that dies fails at once, quoting its output."""

from __future__ import annotations

import re

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
    _gateway_project(pytester, (PROJECT / "examples" / "gateway" / "gateway.py").read_text(encoding="utf-8"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([
        "*- testopeninference -*",
        "trace *: picked 'ChatCompletion' scope=openinference.instrumentation.openai kind=SPAN_KIND_INTERNAL "
        "by openinference.span.kind=LLM; 2 other span(s) of the trace received",
    ])
    result.stdout.fnmatch_lines(["testopeninference: request body keys the fake OpenAI server tolerated: stream"])


def _gateway_project(pytester: pytest.Pytester, gateway: str) -> None:
    """The README's files and ``gateway.py`` beside them, in pytester's temporary directory (not the checkout:
    a path relative to the checkout or the working directory would not be found)."""
    assert not pytester.path.resolve().is_relative_to(PROJECT.resolve())
    for name, text in readme_files().items():
        (pytester.path / name).write_text(text, encoding="utf-8")
    (pytester.path / "gateway.py").write_text(gateway, encoding="utf-8")


def test_a_gateway_that_dies_at_start_fails_the_fixture_at_once_quoting_its_output(pytester: pytest.Pytester,
                                                                                  monkeypatch):
    monkeypatch.setenv("TESTOPENINFERENCE_CASSETTES_DIR", str(PROJECT / "cassettes"))
    monkeypatch.setenv("TESTOPENINFERENCE_SPANS_DIR", str(PROJECT / "spans"))
    _gateway_project(pytester, "import sys\nprint('gateway: no config file', flush=True)\nsys.exit(3)\n")
    (pytester.path / "elsewhere").mkdir()
    monkeypatch.chdir(pytester.path / "elsewhere")  # the conftest's path, not the working directory, finds it
    result = pytester.runpytest_subprocess(str(pytester.path), "-p", "no:cacheprovider", "-k", "chat-basic")
    result.assert_outcomes(errors=1, deselected=4)
    result.stdout.fnmatch_lines(["*the gateway exited with status 3:", "gateway: no config file"])

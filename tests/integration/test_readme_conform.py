"""The README's ``conform`` examples as a user pastes them: bash parses each one verbatim, the first runs in the
checkout and every cassette matches, a command pasted over several lines works, and the install line names
every distribution the example gateway imports."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testopeninference.conform.gateway_process import PLACEHOLDERS, fill_command
from tests.helpers import PROJECT

SECTION = "## Score a gateway: testopeninference conform"
RECORD_ARGV = 'testopeninference() { printf "%s\\0" "$@" "$END"; }\nEND=$(printf "\\001")\n'  # argv, as bash passes it


def section(heading: str = SECTION) -> str:
    return (PROJECT / "README.md").read_text(encoding="utf-8").split(heading, 1)[1].split("\n## ", 1)[0]


def examples() -> str:
    """The section's first ``sh`` block: the conform commands."""
    block = re.search(r"```sh\n(.*?)```", section(), flags=re.DOTALL)
    assert block, "no sh block in the conform section"
    return block.group(1)


def shell_argv(script: str) -> list[list[str]]:
    """Each ``testopeninference`` command's arguments, as bash gives them (a stub function prints them)."""
    done = subprocess.run(["bash", "-c", RECORD_ARGV + script], capture_output=True, text=True, timeout=30, check=True)
    commands: list[list[str]] = [[]]
    for argument in done.stdout.split("\0")[:-1]:
        if argument == "\x01":
            commands.append([])
        else:
            commands[-1].append(argument)
    return commands[:-1]


def shell_env() -> dict[str, str]:
    """This environment, with this Python's ``testopeninference`` first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_each_readme_conform_example_is_one_whole_command_with_no_stray_argument():
    commands = shell_argv(examples())
    assert len(commands) == 3 and all(argv[0] == "conform" for argv in commands), commands
    values = {name: f"/{name}" for name in PLACEHOLDERS}
    for argv in commands:
        if "--gateway-cmd" in argv:
            arguments = fill_command(argv[argv.index("--gateway-cmd") + 1], values)
            assert not [argument for argument in arguments if not argument.strip() or "\\" in argument], arguments


def test_the_readme_first_conform_example_runs_as_written_and_every_cassette_matches():
    first = examples().splitlines()[0]
    done = subprocess.run(["bash", "-c", first], cwd=PROJECT, env=shell_env(), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.rstrip().splitlines()[-1]
    assert re.fullmatch(r"(\d+) cassette\(s\) scored .* in [\d.]+ s: \1 match\.", summary), summary


def test_a_gateway_cmd_pasted_over_several_lines_runs_as_on_one():
    """Inside single quotes bash keeps a backslash-newline; conform drops it, as a shell would."""
    pasted = ("testopeninference conform --gateway-cmd 'env ANTHROPIC_BASE_URL={fake_base_url} \\\n"
              "    CO_API_URL={fake_base_url} {python} openai_proxy.py \\\n    --port {port}' -k 'chat-basic and not azure'")
    assert "\\\n" in shell_argv(pasted)[0][2]  # what conform is given
    done = subprocess.run(["bash", "-c", pasted], cwd=PROJECT, env=shell_env(), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith(": 1 match."), done.stdout


@pytest.mark.parametrize("heading", [SECTION, "## Testing a gateway against the goldens"])
def test_the_readme_names_every_distribution_the_example_gateway_imports(heading: str):
    install = re.search(r"`pip install (fastapi[^`]*)`", " ".join(section(heading).split()))
    assert install, f"{heading!r} names no pip install line for the example gateway"
    named = {_normalized(name) for name in install.group(1).split()}
    brought = {_normalized(re.split(r"[^\w.-]", requirement, maxsplit=1)[0]) for name in named
               for requirement in importlib.metadata.requires(name) or () if "extra ==" not in requirement}
    assert _imported_distributions(PROJECT / "examples" / "gateway" / "gateway.py") - brought <= named


def _imported_distributions(script: Path) -> set[str]:
    """The distributions whose modules the script imports (found by the installed files; the optional gRPC
    exporter left out: only OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs it)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:  # a name may be a module (from opentelemetry import trace)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    owners = {}
    for distribution in importlib.metadata.distributions():
        for file in distribution.files or ():
            owners[str(Path(distribution.locate_file(file)).resolve())] = _normalized(distribution.metadata["Name"])
    found = set()
    for module in modules:
        if module.split(".")[0] in {*sys.stdlib_module_names, "__future__"} or ".grpc." in module:
            continue
        origin = _origin(module) or _origin(module.rpartition(".")[0])
        assert origin, f"{module} is not installed here"
        found.add(owners[str(Path(origin).resolve())])
    return found


def _origin(module: str) -> str | None:
    """The file of a module (None for a name that is no module, or a namespace package: no one distribution's)."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None
    return spec.origin if spec is not None else None


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

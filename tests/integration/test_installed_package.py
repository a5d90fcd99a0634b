"""The installed package is the product: build the wheel and the sdist, install each into a fresh virtualenv
outside the checkout, and use it from a temporary directory as a gateway repository would.

Every subprocess runs with a clean environment (no ``TESTOPENINFERENCE_*`` or ``RECORD_*`` variables, no
``PYTHONPATH``, the checkout off ``PATH``, ``XDG_CACHE_HOME`` in the test's tmp dir) and a timeout. The
distributions are built once per session; uv, when there is one, makes the virtualenvs and shares its cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib.util import find_spec
from pathlib import Path

import pytest

from testopeninference.recorder.conventions import CONVENTIONS
from tests.helpers import CASSETTES, SPANS

CHECKOUT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 600
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 300
RECORD_TIMEOUT = 1200  # a cold build of the proxy's virtualenv downloads every pin
NO_NETWORK = (
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Failed to establish a new connection",
    "Could not find a version that satisfies the requirement setuptools",
    "No matching distribution found for setuptools",
    "Connection refused",
    "ConnectTimeout",
)


@dataclasses.dataclass(frozen=True)
class Distributions:
    wheel: Path
    sdist: Path


@dataclasses.dataclass(frozen=True)
class Venv:
    root: Path
    python: Path
    package: Path  # site-packages/testopeninference
    before: dict[str, str]  # the package's files and their hashes, right after installing

    @property
    def cli(self) -> Path:
        return self.python.parent / "testopeninference"

    def assert_package_untouched(self) -> None:
        """Nothing was written into the installed package (the packaged goldens are read-only)."""
        assert _listing(self.package) == self.before


# -- running things ------------------------------------------------------------------------------------------


def _run(command: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(part) for part in command], cwd=cwd, env=env, timeout=timeout,
                              capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{command[:3]} did not finish within {timeout} s:\n{expired.stdout}\n{expired.stderr}")


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _outside_checkout(path: str) -> bool:
    resolved = os.path.realpath(path or ".")
    return not (resolved == str(CHECKOUT) or resolved.startswith(str(CHECKOUT) + os.sep))


@pytest.fixture(scope="session")
def uv() -> str | None:
    return shutil.which("uv")


@pytest.fixture(scope="session")
def clean_env(tmp_path_factory, uv: str | None) -> dict[str, str]:
    """The environment of every subprocess: none of our settings, nothing of the checkout, caches in tmp
    (uv's own cache is shared, so the virtualenvs install fast)."""
    tools = tmp_path_factory.mktemp("tools")  # uv alone, so that the checkout's .venv/bin stays off PATH
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("TESTOPENINFERENCE_", "RECORD_", "PYTEST_"))
           and name not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH"}}
    path = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry and _outside_checkout(entry)]
    if uv:
        (tools / "uv").symlink_to(uv)
        uv_cache = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, timeout=60).stdout.strip()
        if uv_cache:
            env["UV_CACHE_DIR"] = uv_cache
    env["PATH"] = os.pathsep.join([str(tools), *path])
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    env["DOCKER_HOST"] = "unix:///nonexistent.sock"
    return env


@pytest.fixture(scope="session")
def distributions(tmp_path_factory) -> Distributions:
    """The wheel and the sdist of the checkout, built once (``python -m build``, isolated, from PyPI)."""
    out = tmp_path_factory.mktemp("dist")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("TESTOPENINFERENCE_", "RECORD_"))}
    result = _run([sys.executable, "-m", "build", "--outdir", out, CHECKOUT], cwd=out, env=env, timeout=BUILD_TIMEOUT)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(sign in output for sign in NO_NETWORK):
            pytest.skip(f"python -m build needs the package index for its build environment and cannot reach it:\n"
                        f"{output[-2000:]}")
        pytest.fail(f"python -m build failed ({result.returncode}):\n{output[-6000:]}")
    (wheel,) = out.glob("testopeninference-*.whl")
    (sdist,) = out.glob("testopeninference-*.tar.gz")
    return Distributions(wheel, sdist)


def _make_venv(root: Path, requirements: list[str | Path], env: dict[str, str], uv: str | None) -> Venv:
    python = root / "bin" / "python"
    if uv:
        _ok(_run([uv, "venv", "--quiet", "--python", sys.executable, root], cwd=root.parent, env=env, timeout=120))
        _ok(_run([uv, "pip", "install", "--quiet", "--python", python, *requirements], cwd=root.parent, env=env,
                 timeout=INSTALL_TIMEOUT))
    else:
        _ok(_run([sys.executable, "-m", "venv", root], cwd=root.parent, env=env, timeout=120))
        _ok(_run([python, "-m", "pip", "install", "--quiet", *requirements], cwd=root.parent, env=env,
                 timeout=INSTALL_TIMEOUT))
    where = _ok(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=root.parent, env=env, timeout=60)).stdout.strip()
    package = Path(where) / "testopeninference"
    assert (package / "__init__.py").is_file(), f"testopeninference is not in {where}"
    return Venv(root, python, package, _listing(package))


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory, distributions: Distributions, clean_env, uv) -> Venv:
    """The wheel and pytest (a gateway repository has it), nothing else: not the proxy's pins."""
    return _make_venv(tmp_path_factory.mktemp("wheel") / "venv", [distributions.wheel, "pytest"], clean_env, uv)


@pytest.fixture(scope="module")
def sdist_venv(tmp_path_factory, distributions: Distributions, clean_env, uv) -> Venv:
    return _make_venv(tmp_path_factory.mktemp("sdist") / "venv", [distributions.sdist], clean_env, uv)


def _listing(package: Path) -> dict[str, str]:
    """Every file of the installed package (hidden ones too) with its SHA-256."""
    return {str(path.relative_to(package)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(package.rglob("*")) if path.is_file() and "__pycache__" not in path.parts}


# -- what the distributions hold -----------------------------------------------------------------------------


def _packaged_data() -> set[str]:
    """The files the wheel must carry beside the code, from the checkout's cassettes/ and spans/."""
    wanted = {"cassettes/" + path.relative_to(CASSETTES).as_posix() for path in CASSETTES.rglob("*")
              if path.is_file() and not any(part.startswith(".") for part in path.relative_to(CASSETTES).parts)}
    wanted |= {"spans/" + path.relative_to(SPANS).as_posix() for path in SPANS.rglob("*")
               if path.is_file() and path.suffix in {".json", ".yaml"}
               and not any(part.startswith(".") for part in path.relative_to(SPANS).parts)}
    return {f"testopeninference/{name}" for name in wanted}


def test_the_wheel_installs_only_testopeninference_with_all_its_data(distributions: Distributions):
    with zipfile.ZipFile(distributions.wheel) as wheel:
        names = set(wheel.namelist())
        dist_info = next(name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info"))
        top_level = wheel.read(f"{dist_info}/top_level.txt").decode().split()
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert top_level == ["testopeninference"]
    assert {name.split("/")[0] for name in names} == {"testopeninference", dist_info}
    proxy = {name for name in names if name.startswith("testopeninference/proxy/")}
    assert proxy == {f"testopeninference/proxy/{name}"
                     for name in ("Dockerfile", "openai_proxy.py", "anthropic_proxy.py", "cohere_proxy.py",
                                  "requirements.txt")}
    missing = _packaged_data() - names
    assert not missing, f"the wheel lacks {sorted(missing)[:10]}"
    for convention in CONVENTIONS.values():  # every convention's goldens, with the event goldens
        folder = f"testopeninference/spans/{convention.spans_subdir + '/' if convention.spans_subdir else ''}"
        assert f"{folder}chat-basic.json" in names, convention.name
        if convention.emits_events:
            assert f"{folder}chat-basic.logs.json" in names, convention.name
    assert any(name.startswith("testopeninference/cassettes/testdata/") and name.endswith(".wav") for name in names)
    for name in ("spans/manifest.yaml", "proxy/requirements.txt", "proxy/Dockerfile", "proxy/openai_proxy.py",
                 "py.typed", "recorder/__init__.py", "recorder/backends/local.py", "cli.py", "pytest_plugin.py",
                 "conform/command.py", "conform/gateway_output.py", "conform/reports/html.py"):
        assert f"testopeninference/{name}" in names, name
    assert "Name: testopeninference" in metadata and "Description-Content-Type: text/markdown" in metadata
    assert "testopeninference = testopeninference.cli:main" in entry_points
    assert "testopeninference = testopeninference.pytest_plugin" in entry_points


def test_the_sdist_holds_the_tests_and_the_data(distributions: Distributions):
    with tarfile.open(distributions.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for name in ("LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in", "requirements.txt",
                 "Dockerfile", "openai_proxy.py", "anthropic_proxy.py", "cohere_proxy.py", "conftest.py",
                 "spans/manifest.yaml", "cassettes/chat-basic.yaml",
                 "tests/helpers.py", "tests/integration/test_installed_package.py", "recorder/proxy_env.py",
                 "testopeninference/py.typed"):
        assert name in names, name
    missing = {name.removeprefix("testopeninference/") for name in _packaged_data()} - names
    assert not missing, f"the sdist lacks {sorted(missing)[:10]}"
    assert not [name for name in names if "__pycache__" in name or ".testopeninference.lock" in name]


def test_twine_accepts_the_distributions_when_it_is_installed(distributions: Distributions, clean_env):
    if find_spec("twine") is None:  # not in the test extra; checked where it is installed
        return
    _ok(_run([sys.executable, "-m", "twine", "check", "--strict", distributions.wheel, distributions.sdist],
             cwd=distributions.wheel.parent, env=clean_env, timeout=RUN_TIMEOUT))


# -- the wheel, used from outside the checkout ---------------------------------------------------------------

GETTERS = '''
import json, sys
import testopeninference
from testopeninference import get_chat_span, get_log_records, get_span
from testopeninference.goldens import golden_location
from testopeninference.recorder import resources
from testopeninference.recorder.config import Settings
from testopeninference.recorder.conventions import get_convention

wanted = json.loads(sys.argv[1])
report = {"module": testopeninference.__file__, "sys_path": sys.path, "installed": resources.INSTALLED,
          "goldens": {}}
for convention, cassettes in wanted.items():
    for cassette, is_chat in cassettes.items():
        entry = {"name": get_span(cassette, convention=convention).name,
                 "path": str(golden_location(Settings.from_env(convention=convention), cassette).path)}
        if is_chat:
            entry["chat_name"] = get_chat_span(cassette, convention=convention).name
        if get_convention(convention).emits_events:
            entry["events"] = [record.event_name for record in get_log_records(cassette, convention=convention)]
        report["goldens"][f"{convention}/{cassette}"] = entry
print(json.dumps(report))
'''


def _expected_goldens() -> dict[str, dict[str, bool]]:
    """Per convention, every cassette with a golden in the checkout, and whether it is a chat one."""
    from testopeninference.recorder.cassette import CassetteLibrary
    from testopeninference.recorder.endpoints import Endpoint, endpoint_of

    library = CassetteLibrary(CASSETTES)
    return {name: {cassette: endpoint_of(library.load(cassette)) is Endpoint.CHAT
                   for cassette in library.names() if convention.span_path(SPANS, cassette).is_file()}
            for name, convention in CONVENTIONS.items()}


def _check_getters(venv: Venv, workdir: Path, env: dict[str, str]) -> None:
    """Every convention's goldens, read through the public getters from the installed package."""
    wanted = _expected_goldens()
    script = workdir / "getters.py"
    script.write_text(GETTERS, encoding="utf-8")
    report = json.loads(_ok(_run([venv.python, script, json.dumps(wanted)], cwd=workdir, env=env,
                                 timeout=RUN_TIMEOUT)).stdout)
    assert Path(report["module"]).parent == venv.package and report["installed"] is True
    assert all(_outside_checkout(entry) for entry in report["sys_path"]), report["sys_path"]
    span_files = [path for path in SPANS.rglob("*.json") if not path.name.endswith(".logs.json")]
    assert sum(map(len, wanted.values())) == len(report["goldens"]) == len(span_files)
    for convention, cassettes in wanted.items():
        for cassette, is_chat in cassettes.items():
            entry = report["goldens"][f"{convention}/{cassette}"]
            shipped = CONVENTIONS[convention].span_path(venv.package / "spans", cassette)
            assert Path(entry["path"]) == shipped, entry  # read from site-packages, not from the checkout
            golden = json.loads(CONVENTIONS[convention].span_path(SPANS, cassette).read_text(encoding="utf-8"))
            assert entry["name"] == golden["name"], (convention, cassette)
            assert entry.get("chat_name") == (golden["name"] if is_chat else None)
            if CONVENTIONS[convention].emits_events:
                logs = json.loads(CONVENTIONS[convention].logs_path(SPANS, cassette).read_text(encoding="utf-8"))
                names = [record.get("eventName", "") for resource in logs.get("resourceLogs", [])
                         for scope in resource.get("scopeLogs", []) for record in scope.get("logRecords", [])]
                assert entry["events"] == names, (convention, cassette)
    assert report["goldens"]["otel-genai-events/chat-basic"]["events"]  # the events conventions have events


def test_the_wheels_getters_read_every_conventions_packaged_goldens(wheel_venv: Venv, tmp_path: Path, clean_env):
    _check_getters(wheel_venv, tmp_path, clean_env)
    wheel_venv.assert_package_untouched()
    assert list(tmp_path.iterdir()) == [tmp_path / "getters.py"]  # nothing recorded into the working directory


def test_the_wheels_openinference_validator_passes_a_packaged_golden(wheel_venv: Venv, tmp_path: Path, clean_env):
    script = ("from testopeninference import get_span, validate_openinference as v; "
              "print(v(get_span('chat-basic')), v({'name': 'x', 'attributes': []}))")
    result = _ok(_run([wheel_venv.python, "-c", script], cwd=tmp_path, env=clean_env, timeout=RUN_TIMEOUT))
    assert result.stdout.startswith("[] ['openinference.span.kind: missing"), result.stdout


def test_the_wheels_command_line_lists_shows_and_diffs_packaged_goldens(wheel_venv: Venv, tmp_path: Path,
                                                                         clean_env):
    def cli(*args: str | Path) -> subprocess.CompletedProcess:
        return _run([wheel_venv.cli, *args], cwd=tmp_path, env=clean_env, timeout=RUN_TIMEOUT)

    listing = _ok(cli("list")).stdout.splitlines()
    assert listing[0].split() == ["CASSETTE", "ENDPOINT", "GOLDEN", "FROM", "DESCRIPTION"]
    rows = {line.split()[0]: line.split()[1:4] for line in listing[1:] if not line.startswith(" ")}
    assert set(rows) == {path.stem for path in CASSETTES.glob("*.yaml")}
    assert rows["chat-basic"] == ["chat", "present", "package"]
    assert {tuple(row[1:]) for row in rows.values()} == {("present", "package")}

    shown = _ok(cli("show", "chat-basic")).stdout
    assert shown.splitlines()[0].split() == ["name", "ChatCompletion"] and "llm.token_count.total" in shown
    events = _ok(cli("show", "--convention", "otel-genai-events", "chat-basic")).stdout
    assert "log     gen_ai.client.inference.operation.details" in events

    same = tmp_path / "same.json"
    shutil.copy(SPANS / "chat-basic.json", same)
    result = cli("diff", "chat-basic", same)
    assert (result.returncode, result.stdout.strip()) == (0, "spans match"), result.stderr
    changed = json.loads(same.read_text(encoding="utf-8"))
    for attribute in changed["attributes"]:
        if attribute["key"] == "llm.token_count.total":
            attribute["value"] = {"intValue": "51"}
    other = tmp_path / "changed.json"
    other.write_text(json.dumps(changed), encoding="utf-8")
    result = cli("diff", "chat-basic", other)
    assert result.returncode == 1, result.stderr
    assert "'llm.token_count.total': expected 50, got 51" in result.stdout

    dying = cli("conform", "--gateway-cmd", "{python} -c 'raise SystemExit(4)'", "-k", "chat-basic and not azure")
    assert dying.returncode == 2 and "the gateway exited with status 4" in dying.stderr, dying.stderr

    pruned = _ok(cli("prune", "--dry-run")).stdout  # the working directory's (absent) spans/, never the package's
    assert pruned.strip() == "0 orphaned golden(s)"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["changed.json", "same.json"]  # nothing made here

    packaged = wheel_venv.package / "spans"  # pointed at the packaged goldens on purpose: refused, one line
    for command in (("record", "--force", "--spans-dir", packaged, "chat-basic"), ("prune", "--spans-dir", packaged)):
        result = cli(*command)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("Error: ") and "never" in result.stderr
    wheel_venv.assert_package_untouched()


# -- a gateway repository using the wheel --------------------------------------------------------------------

GATEWAY_PYPROJECT = """\
[project]
name = "my-gateway"
version = "0.1.0"

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.testopeninference]
cassettes-dir = "tests/cassettes"
spans-dir = "tests/spans"
"""

GATEWAY_TESTS = '''\
"""My gateway's span tests: my own cassette's golden and a packaged one."""

from testopeninference import assert_span_equal, get_span
from testopeninference.kit import send_cassette


def test_my_cassette_has_its_own_golden(golden_span):
    mine = golden_span("chat-my-gateway")
    assert mine.name == "ChatCompletion"
    assert_span_equal(get_span("chat-basic"), mine)  # the same request as the packaged chat-basic
    assert get_span("chat-my-gateway") == mine


def test_a_packaged_golden_beside_mine(golden_span):
    assert golden_span("chat-basic") == get_span("chat-basic")
    assert golden_span("embeddings-basic").name == "CreateEmbeddings"


def test_the_fake_server_replays_my_cassette(fake_openai):
    reply = send_cassette(fake_openai.url, fake_openai.cassette("chat-my-gateway"))
    assert reply.status == 200 and "lighthouse" in reply.body.lower()
    assert fake_openai.requests("chat-my-gateway")
'''


@dataclasses.dataclass(frozen=True)
class GatewayRepo:
    root: Path
    record: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def gateway_repo(tmp_path_factory, wheel_venv: Venv, clean_env) -> GatewayRepo:
    """A gateway repository with its own cassette, whose golden ``testopeninference record`` made."""
    root = tmp_path_factory.mktemp("my-gateway")
    (root / "pyproject.toml").write_text(GATEWAY_PYPROJECT, encoding="utf-8")
    (root / "tests" / "cassettes").mkdir(parents=True)
    text = (CASSETTES / "chat-basic.yaml").read_text(encoding="utf-8")
    text = text.replace("description: ", "description: My gateway's chat. ", 1)
    (root / "tests" / "cassettes" / "chat-my-gateway.yaml").write_text(text, encoding="utf-8")
    (root / "tests" / "test_my_gateway.py").write_text(GATEWAY_TESTS, encoding="utf-8")
    record = _run([wheel_venv.cli, "record", "chat-my-gateway"], cwd=root, env=clean_env, timeout=RECORD_TIMEOUT)
    return GatewayRepo(root, record)


def test_recording_in_a_gateway_repo_makes_the_proxys_own_virtualenv(gateway_repo: GatewayRepo,
                                                                      wheel_venv: Venv, clean_env):
    record = _ok(gateway_repo.record)
    assert "making the proxy's environment" in record.stderr  # the wheel's venv lacks the pins
    cache = Path(clean_env["XDG_CACHE_HOME"]) / "testopeninference"
    assert any(path.name.startswith("proxy-py") for path in cache.iterdir())
    golden = gateway_repo.root / "tests" / "spans" / "chat-my-gateway.json"
    assert golden.read_bytes() == (SPANS / "chat-basic.json").read_bytes()  # the same request, the same span
    assert "chat-my-gateway" in (gateway_repo.root / "tests" / "spans" / "manifest.yaml").read_text(encoding="utf-8")
    wheel_venv.assert_package_untouched()

    listing = _ok(_run([wheel_venv.cli, "list"], cwd=gateway_repo.root, env=clean_env, timeout=RUN_TIMEOUT)).stdout
    rows = {line.split()[0]: line.split()[1:4] for line in listing.splitlines()[1:] if not line.startswith(" ")}
    assert rows["chat-my-gateway"] == ["chat", "present", "project"]
    assert rows["chat-basic"] == ["chat", "present", "package"]


def test_the_gateway_repos_pytest_uses_its_own_and_the_packaged_goldens(gateway_repo: GatewayRepo,
                                                                         wheel_venv: Venv, clean_env):
    _ok(gateway_repo.record)
    result = _run([wheel_venv.python, "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=gateway_repo.root,
                  env=clean_env, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert "recorded" not in result.stdout  # every golden was there: its own, recorded above, and the packaged
    spans = gateway_repo.root / "tests" / "spans"
    assert sorted(path.name for path in spans.iterdir() if not path.name.startswith(".")) == [
        "chat-my-gateway.json", "manifest.yaml"]

    (spans / "chat-my-gateway.json").unlink()  # re-recorded by the plugin, in the proxy's cached virtualenv
    result = _run([wheel_venv.python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--record-spans"],
                  cwd=gateway_repo.root / "tests", env=clean_env, timeout=RECORD_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"testopeninference: recorded {spans / 'chat-my-gateway.json'}" in result.stdout
    assert "1 golden(s) recorded" in result.stdout
    assert "making the proxy's environment" not in result.stdout + result.stderr  # made once, above
    assert (spans / "chat-my-gateway.json").read_bytes() == (SPANS / "chat-basic.json").read_bytes()
    wheel_venv.assert_package_untouched()


# -- the sdist -----------------------------------------------------------------------------------------------


def test_the_sdist_installs_a_working_package(sdist_venv: Venv, tmp_path: Path, clean_env):
    _check_getters(sdist_venv, tmp_path, clean_env)
    listing = _ok(_run([sdist_venv.cli, "list"], cwd=tmp_path, env=clean_env, timeout=RUN_TIMEOUT)).stdout
    rows = [line.split()[1:4] for line in listing.splitlines()[1:] if not line.startswith(" ")]
    assert len(rows) == len(list(CASSETTES.glob("*.yaml")))
    assert {tuple(row[1:]) for row in rows} == {("present", "package")}
    sdist_venv.assert_package_untouched()


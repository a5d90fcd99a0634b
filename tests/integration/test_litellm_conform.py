"""``testopeninference conform`` on LiteLLM's proxy (``examples/litellm/``), as CI and a gateway author run it.

The command is the one ``python -m tests.integration.litellm_gateway --print-conform-command`` prints (the
README's): conform starts LiteLLM from its own virtualenv with ``litellm.env`` and an allow-listed
environment, scores the 39 chat, completion and embeddings cassettes, and gates on the committed
``baseline.yaml``. One LiteLLM start scores them all; a second, for one cassette, shows that a difference
the baseline no longer lists fails the run and is named.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from testopeninference.conform.gateway_process import fill_values, read_env_file
from testopeninference.recorder.config import Settings
from testopeninference.recorder.proxy_env import default_cache_dir
from tests.helpers import PROJECT
from tests.integration.litellm_gateway import (BASELINE, ENV_FILE, conform_arguments, litellm_environment,
                                               litellm_executable)

pytestmark = [pytest.mark.integration, pytest.mark.litellm]

CASSETTES = 39  # chat-*, completion-*, embeddings-*
RUN_TIMEOUT = 400  # seconds: LiteLLM's start (up to 180) and the scoring


@dataclasses.dataclass(frozen=True)
class ConformResult:
    status: int
    output: str
    reports: Path


def _conform(executable: Path, workdir: Path, *extra: str) -> ConformResult:
    """``testopeninference conform`` as a real process from the repository root, with nothing of ours in its
    environment (as the README's ``env -i``): LiteLLM gets PATH, HOME, the locale and ``litellm.env``."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir), "LANG": "C.UTF-8"}
    command = [sys.executable, "-m", "testopeninference", *conform_arguments(executable), *extra]
    done = subprocess.run(command, cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    return ConformResult(done.returncode, done.stdout + done.stderr, workdir)


@pytest.fixture(scope="module")
def executable(span_settings: Settings) -> Path:
    return litellm_executable(span_settings.cache_dir or default_cache_dir(os.environ))


@pytest.fixture(scope="module")
def gated_run(executable: Path, tmp_path_factory: pytest.TempPathFactory) -> ConformResult:
    """One conform run over every cassette LiteLLM serves, against the committed baseline, every report."""
    workdir = tmp_path_factory.mktemp("litellm-conform")
    return _conform(executable, workdir, "--baseline", str(BASELINE), "--junit", str(workdir / "junit.xml"),
                    "--json", str(workdir / "scorecard.json"), "--html", str(workdir / "report.html"))


def test_conform_passes_litellm_on_its_committed_baseline(gated_run: ConformResult) -> None:
    assert gated_run.status == 0, gated_run.output[-4000:]
    assert f"{CASSETTES} differs; baseline {BASELINE}: {CASSETTES} of {CASSETTES} pass." in gated_run.output
    assert "baseline entry no longer occurs" not in gated_run.output


def test_conform_junit_has_one_passing_case_per_cassette(gated_run: ConformResult) -> None:
    suites = ElementTree.parse(gated_run.reports / "junit.xml").getroot()
    assert (suites.get("tests"), suites.get("failures"), suites.get("errors")) == (str(CASSETTES), "0", "0")
    cases = suites.findall("./testsuite/testcase")
    assert len(cases) == CASSETTES and all(case.find("failure") is None for case in cases)


def test_conform_json_and_html_name_litellm_s_deviations(gated_run: ConformResult) -> None:
    scorecard = json.loads((gated_run.reports / "scorecard.json").read_text(encoding="utf-8"))
    assert json.dumps(scorecard).count('"llm.system"') >= 1
    page = (gated_run.reports / "report.html").read_text(encoding="utf-8")
    assert "llm.system" in page and "embedding.vector.0" in page


def test_a_difference_the_baseline_no_longer_lists_fails_conform_and_is_named(
        executable: Path, tmp_path: Path) -> None:
    document = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))
    entries = document["cassettes"]["chat-basic"]
    removed = next(entry for entry in entries if entry["key"] == "llm.system")
    document["cassettes"] = {"chat-basic": [entry for entry in entries if entry is not removed]}
    narrowed = tmp_path / "baseline.yaml"
    narrowed.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    run = _conform(executable, tmp_path, "--baseline", str(narrowed), "-k", "chat-basic and not azure", "--junit",
                   str(tmp_path / "junit.xml"))
    assert run.status == 1, run.output[-4000:]
    assert "chat-basic" in run.output and "attribute 'llm.system': missing (expected 'openai')" in run.output
    assert f"baseline {narrowed}: 0 of 1 pass." in run.output
    failure = ElementTree.parse(tmp_path / "junit.xml").getroot().find("./testsuite/testcase/failure")
    assert failure is not None and "llm.system" in (failure.text or "") + (failure.get("message") or "")


def test_litellm_env_is_the_launcher_s_environment(tmp_path: Path) -> None:
    values = {"openai_base_url": "http://127.0.0.1:1/v1", "otlp_endpoint": "http://127.0.0.1:2"}
    from_file = fill_values(read_env_file(ENV_FILE), values)
    launched = litellm_environment(values["openai_base_url"], values["otlp_endpoint"], "arize_phoenix",
                                   "http/protobuf", tmp_path, from_file["LITELLM_MASTER_KEY"])
    passed_through = {"PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "HOME"}
    assert from_file == {key: value for key, value in launched.items() if key not in passed_through}

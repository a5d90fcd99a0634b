"""``testopeninference conform`` against real gateways: this repository's proxy and the example gateway.

Each test runs the command in-process (``cli.main``), which starts the gateway
as a real child process (``--gateway-cmd``), the fake upstream and the
collector, and scores the cassettes over real HTTP on loopback.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

from testopeninference.cli import main
from testopeninference.conform.gateway_process import free_port
from tests.helpers import CASSETTES, PROJECT, SPANS

PROXY = shlex.quote(str(PROJECT / "openai_proxy.py"))
OWN_PROXY = ("env OPENAI_BASE_URL={openai_base_url} ANTHROPIC_BASE_URL={fake_base_url} CO_API_URL={fake_base_url} "
             f"OTEL_EXPORTER_OTLP_ENDPOINT={{otlp_endpoint}} {{python}} {PROXY} --port {{port}}")
GENAI_PROXY = OWN_PROXY + " --convention otel-genai"
EXAMPLE_GATEWAY = f"{{python}} {shlex.quote(str(PROJECT / 'examples' / 'gateway' / 'gateway.py'))} --port {{port}}"
EXAMPLE_CASSETTES = "(chat-basic or chat-streaming or chat-tools or completion-basic or embeddings-basic) and not azure"
EXAMPLE_SCORED = 7  # chat-streaming also selects chat-streaming-detailed-usage and chat-streaming-web-search


def conform(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["conform", "--cassettes-dir", str(CASSETTES), "--spans-dir", str(SPANS), *argv], out, err)
    return status, out.getvalue(), err.getvalue()


def example_env(tmp_path: Path, protocol: str = "http/protobuf") -> Path:
    """The example gateway's settings, as a gateway author keeps them: an env file."""
    env_file = tmp_path / "gateway.env"
    endpoint = "{otlp_grpc_endpoint}" if protocol == "grpc" else "{otlp_endpoint}"
    env_file.write_text("# the example gateway\nexport OTEL_BSP_SCHEDULE_DELAY=10\nOPENAI_API_KEY='unused'\n"
                        f"OPENAI_BASE_URL=\"{{openai_base_url}}\"\nOTEL_EXPORTER_OTLP_ENDPOINT={endpoint}\n"
                        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}\n")
    return env_file


def test_own_proxy_scores_every_covered_cassette_a_match(tmp_path: Path):
    """The acceptance test: this repository's proxy is a gateway, and its spans are the goldens."""
    status, out, err = conform("--gateway-cmd", OWN_PROXY, "--json", str(tmp_path / "card.json"))
    assert status == 0, out + err
    card = json.loads((tmp_path / "card.json").read_text())
    assert len(card["cassettes"]) >= 40
    assert {c["outcome"] for c in card["cassettes"]} == {"match"}
    assert card["summary"]["match"] == len(card["cassettes"])


def test_own_proxy_with_the_genai_convention_scores_no_cassette_a_match(tmp_path: Path):
    status, out, err = conform("--gateway-cmd", GENAI_PROXY, "-k", "chat-basic or embeddings-basic or completion-basic",
                               "--timeout", "2", "--junit", str(tmp_path / "junit.xml"))
    assert status == 1, out + err
    prefixes = ("chat-", "azure-", "embeddings-", "completion-")
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith(prefixes)}
    assert rows and "match" not in rows.values(), out
    assert rows["completion-basic"] == "no", out  # "no span": otel-genai does not instrument completions
    assert rows["chat-basic"] == "differs", out
    tally = {line.split()[0]: line.split()[1:] for line in out.split("ATTRIBUTE")[1].splitlines()[1:] if line.strip()}
    assert tally["llm.model_name"][:2] == ["2", "2"], out  # the per-key table: 2 cassettes, both missing it
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(len(rows)), str(len(rows)), "0")
    cases = suite.findall("testcase")
    assert {case.get("name") for case in cases} == set(rows)
    assert all(case.find("failure") is not None for case in cases)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_example_gateway_scores_its_cassettes_a_match_with_the_kit_adaptations(tmp_path: Path, protocol: str):
    status, out, err = conform(
        "--gateway-cmd", EXAMPLE_GATEWAY, "--env-file", str(example_env(tmp_path, protocol)), "--ready-path", "/health",
        "-k", EXAMPLE_CASSETTES, "--path-prefix", "/openai", "--model-prefix", "gw::", "--ignore-body-key", "stream")
    assert status == 0, out + err
    assert f"{EXAMPLE_SCORED} cassette(s) scored" in out and f": {EXAMPLE_SCORED} match." in out, out


def test_a_gateway_that_changes_the_request_is_upstream_drift_quoting_the_refusal(tmp_path: Path):
    status, out, err = conform(
        "--gateway-cmd", EXAMPLE_GATEWAY, "--env-file", str(example_env(tmp_path)), "--ready-path", "/health",
        "-k", "chat-basic and not azure", "--path-prefix", "/openai", "--model-prefix", "gw::", "-v")
    assert status == 1, out + err
    assert "upstream drift" in out and "stream" in out and "--ignore-body-key stream" in out, out


def test_a_gateway_answering_another_status_is_a_gateway_error_with_the_body(tmp_path: Path):
    status, out, err = conform(
        "--gateway-cmd", EXAMPLE_GATEWAY, "--env-file", str(example_env(tmp_path)), "--ready-path", "/health",
        "-k", "embeddings-basic", "--path-prefix", "/elsewhere", "-v")
    assert status == 1, out + err
    assert "gateway error" in out and "the gateway answered 404, the cassette recorded 200" in out, out


def test_a_404_names_the_url_sent_to_the_path_prefix_and_an_upstream_that_received_nothing(tmp_path: Path):
    status, out, err = conform(
        "--gateway-cmd", EXAMPLE_GATEWAY, "--env-file", str(example_env(tmp_path)), "--ready-path", "/health",
        "-k", "embeddings-basic", "--path-prefix", "/elsewhere", "-v")
    assert status == 1, out + err
    assert "/elsewhere/v1/embeddings: is --path-prefix the gateway's route (e.g. --path-prefix /openai)?" in out, out
    assert "the fake OpenAI server received no request for this cassette: is the gateway's upstream " in out, out


def test_the_gateway_gets_the_standard_variables_without_an_env_file():
    """OPENAI_BASE_URL, OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_BSP_SCHEDULE_DELAY by default: no env file needed."""
    status, out, err = conform(
        "--gateway-cmd", EXAMPLE_GATEWAY, "--ready-path", "/health", "-k", "chat-basic and not azure",
        "--path-prefix", "/openai", "--model-prefix", "gw::", "--ignore-body-key", "stream")
    assert status == 0, out + err
    assert "  with OPENAI_BASE_URL=http://127.0.0.1:" in out and " OTEL_BSP_SCHEDULE_DELAY=100 (" in out, out


def test_a_gateway_cmd_without_port_is_warned_about_and_named_when_it_never_gets_ready():
    command = "{python} -c \"import time; time.sleep(120)\""
    status, out, err = conform("--gateway-cmd", command, "-k", "chat-basic", "--start-timeout", "1")
    assert status == 2, out + err
    assert "warning: --gateway-cmd has no {port}, so the gateway does not know port " in out, out
    assert "did not get ready within 1 s" in err and "add e.g. --port {port} to the command; or raise" in err, err


def test_baseline_round_trip_accepts_known_differences_and_names_new_and_stale_ones(tmp_path: Path):
    baseline = tmp_path / "baseline.yaml"
    chosen = ("-k", "chat-basic and not azure or embeddings-basic")
    status, out, err = conform("--gateway-cmd", GENAI_PROXY, *chosen, "--write-baseline", str(baseline))
    assert status == 1 and baseline.exists(), out + err
    text = baseline.read_text()
    assert "reason: ''" in text and "key: llm.model_name" in text, text

    status, out, err = conform("--gateway-cmd", GENAI_PROXY, *chosen, "--baseline", str(baseline))
    assert status == 0, out + err
    assert "baseline" in out.splitlines()[-1], out

    document = yaml.safe_load(text)
    entries = document["cassettes"]["chat-basic"]
    document["cassettes"]["chat-basic"] = [
        *(entry for entry in entries if entry["key"] != "llm.model_name"),
        {"key": "no.such.key", "kind": "missing", "reason": "fixed long ago"},
    ]
    baseline.write_text(yaml.safe_dump(document, sort_keys=False))
    status, out, err = conform("--gateway-cmd", GENAI_PROXY, *chosen, "--baseline", str(baseline), "-v")
    assert status == 1, out + err
    failing = [line for line in out.splitlines() if "llm.model_name" in line and "missing" in line]
    assert failing and failing[0].startswith("chat-basic "), out  # the one difference the baseline no longer lists
    assert "no longer occurs" in out and "no.such.key" in out, out


def test_a_malformed_baseline_is_one_usage_error_with_file_and_line(tmp_path: Path):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("version: 1\ncassettes:\n  chat-basic:\n  - key: llm.system\n    kind: sideways\n")
    status, out, err = conform("--gateway-cmd", OWN_PROXY, "--baseline", str(baseline))
    assert status == 2, out + err
    assert f"{baseline}:5:" in err and "sideways" in err, err


def test_a_gateway_that_dies_is_exit_2_quoting_its_output():
    command = "{python} -c \"print('gateway: cannot read its config', flush=True); raise SystemExit(3)\""
    status, out, err = conform("--gateway-cmd", command, "-k", "chat-basic")
    assert status == 2, out + err
    assert "exited with status 3" in err and "gateway: cannot read its config" in err, err


def test_a_gateway_that_never_gets_ready_is_stopped_and_exit_2_quoting_its_output(tmp_path: Path):
    pid_file = tmp_path / "pid"
    command = ("{python} -c \"import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
               f"print('still loading', flush=True); time.sleep(120)\" {shlex.quote(str(pid_file))}")
    status, out, err = conform("--gateway-cmd", command, "-k", "chat-basic", "--start-timeout", "1")
    assert status == 2, out + err
    assert "did not get ready within 1 s" in err and "still loading" in err, err
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_gateway_dies_with_a_killed_conform(tmp_path: Path):
    """SIGKILL of conform leaves no gateway behind (Linux: the launcher's PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal is Linux only")
    pid_file = tmp_path / "pid"
    gateway = ("{python} -c \"import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
               f"time.sleep(120)\" {shlex.quote(str(pid_file))}")
    runner = subprocess.Popen([sys.executable, "-m", "testopeninference", "conform", "--gateway-cmd", gateway,
                               "-k", "chat-basic", "--start-timeout", "60"], cwd=PROJECT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and runner.poll() is None, "the gateway never started"
            time.sleep(0.05)
        gateway_pid = int(pid_file.read_text())
    finally:
        runner.kill()
        runner.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(gateway_pid):
        assert time.monotonic() < deadline, f"gateway {gateway_pid} outlived the killed conform"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (not yet reaped by init) is dead
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_running_gateway_is_scored_after_printing_what_to_configure(tmp_path: Path):
    """--gateway-url: the gateway runs already, configured with fixed ports (--openai-port, --otlp-port)."""
    openai_port, otlp_port, gateway_port = free_port(), free_port(), free_port()
    env = {**os.environ, "OPENAI_BASE_URL": f"http://127.0.0.1:{openai_port}/v1",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}"}
    proxy = subprocess.Popen([sys.executable, str(PROJECT / "openai_proxy.py"), "--port", str(gateway_port)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _accepts(gateway_port):
            assert time.monotonic() < deadline and proxy.poll() is None, "the proxy did not start"
            time.sleep(0.05)
        status, out, err = conform("--gateway-url", f"http://127.0.0.1:{gateway_port}", "--no-wait",
                                   "--openai-port", str(openai_port), "--otlp-port", str(otlp_port),
                                   "-k", "chat-basic and not azure or embeddings-basic")
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
    assert status == 0, out + err
    assert f"OpenAI base URL          http://127.0.0.1:{openai_port}/v1" in out, out
    assert f"OTLP/HTTP endpoint       http://127.0.0.1:{otlp_port}" in out, out
    assert ": 2 match." in out, out


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


FAILING_GATEWAY = '''\
"""A gateway that answers 500 and says why only on its own output; with --call-upstream it calls it first;
with --die it exits instead of answering."""
import http.server, os, sys, urllib.request

CALL_UPSTREAM = "--call-upstream" in sys.argv


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if "--die" in sys.argv:
            print("gateway: out of memory", flush=True)
            os._exit(5)
        if CALL_UPSTREAM:
            request = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + self.path.removeprefix("/v1"), body,
                                             {"Content-Type": "application/json",
                                              "X-Cassette-Name": self.headers["X-Cassette-Name"]})
            urllib.request.urlopen(request, timeout=10).read()
        print("Traceback (most recent call last):", file=sys.stderr, flush=True)
        print("ModuleNotFoundError: No module named 'anthropic'", file=sys.stderr, flush=True)
        self.send_response(500)
        self.send_header("Content-Length", "21")
        self.end_headers()
        self.wfile.write(b"Internal Server Error")

    def log_message(self, *args):
        pass


print("gateway: listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


@pytest.mark.parametrize("calls_upstream", [False, True])
def test_a_gateway_error_quotes_the_gateways_own_output_since_the_cassette_was_sent(tmp_path: Path,
                                                                                    calls_upstream: bool):
    """The 500's cause is in the gateway's output, not its reply: quoted in -v, JSON and HTML; the upstream hint
    only when the fake server really received nothing for the cassette."""
    script = tmp_path / "failing_gateway.py"
    script.write_text(FAILING_GATEWAY)
    command = f"{{python}} {shlex.quote(str(script))} {{port}}" + (" --call-upstream" if calls_upstream else "")
    status, out, err = conform("--gateway-cmd", command, "-k", "chat-basic and not azure", "-v",
                               "--json", str(tmp_path / "card.json"), "--html", str(tmp_path / "card.html"))
    assert status == 1, out + err
    detail = json.loads((tmp_path / "card.json").read_text())["cassettes"][0]["detail"]
    assert detail.startswith("the gateway answered 500, the cassette recorded 200; its body: Internal Server Error")
    assert ("\n  the gateway's output since this cassette was sent (last 2 lines):\n    | Traceback (most recent call "
            "last):\n    | ModuleNotFoundError: No module named 'anthropic'") in detail, detail
    assert "gateway: listening" not in detail, detail  # printed before the cassette was sent
    assert "ModuleNotFoundError: No module named 'anthropic'" in out, out
    assert "No module named &#x27;anthropic&#x27;" in (tmp_path / "card.html").read_text()
    hint = "the fake OpenAI server received no request for this cassette: did it fail before calling it"
    assert (hint in detail) is not calls_upstream, detail


def test_a_gateway_that_dies_on_a_request_is_exit_2_quoting_its_output(tmp_path: Path):
    """Not a refused connection blamed on the gateway's URL: conform names the exit and quotes the output."""
    script = tmp_path / "failing_gateway.py"
    script.write_text(FAILING_GATEWAY)
    status, out, err = conform("--gateway-cmd", f"{{python}} {shlex.quote(str(script))} {{port}} --die",
                               "-k", "chat-basic and not azure")
    assert status == 2, out + err
    assert "the gateway exited with status 5" in err and "gateway: out of memory" in err, err

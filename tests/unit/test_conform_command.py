"""``conform``'s usage errors exit 2 before anything starts; levels; the gateway command's placeholders and env file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from testopeninference.cli import main
from testopeninference.compare import Finding, SpanComparison
from testopeninference.conform.gateway_process import fill_command, fill_values, read_env_file
from testopeninference.conform.levels import get_level
from testopeninference.errors import ConformUsageError


def conform(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["conform", "--gateway-url", "http://127.0.0.1:9", "--no-wait", *argv], out, err)
    return status, err.getvalue()


@pytest.mark.parametrize(("argv", "message"), [
    (("-k", "chat and"), "-k 'chat and': the expression ends where a term was expected"),
    (("-k", "no-such-cassette"), "no cassette with a golden of the openinference convention matching -k 'no-such-cassette'"),
    (("--header", "Authorization Bearer x"), "--header 'Authorization Bearer x' is not 'Name: value'"),
    (("--path-prefix", "openai"), "--path-prefix 'openai' must start with '/'"),
    (("--env-file", "x.env"), "--env-file is for --gateway-cmd"),
])
def test_usage_errors_exit_2_with_one_message(argv: tuple[str, ...], message: str):
    status, err = conform(*argv)
    assert status == 2, err
    assert err.startswith(f"Error: {message}"), err


def test_subset_level_ignores_attributes_the_gateway_adds():
    findings = [Finding("llm.system", "missing", "openai", None, "a"),
                Finding("gw.route", "unexpected", None, "r", "b")]
    comparison = SpanComparison(["a", "b"], [], findings)
    assert get_level("reference")(comparison, None) == findings  # type: ignore[arg-type]
    assert get_level("subset")(comparison, None) == findings[:1]  # type: ignore[arg-type]
    with pytest.raises(ConformUsageError):
        get_level("strict")


def test_spec_level_finds_what_breaks_openinference_whatever_the_golden_chose():
    from testopeninference import get_span

    comparison = SpanComparison([], [], [])
    assert get_level("spec")(comparison, get_span("chat-basic")) == []
    broken = get_span("chat-basic")
    kept = [a for a in broken.attributes if a.key != "llm.system"]
    del broken.attributes[:]
    broken.attributes.extend(kept)
    (found,) = get_level("spec")(comparison, broken)
    assert (found.key, found.kind) == ("llm.system", "invalid") and "llm.system" in found.line


def test_placeholders_are_filled_shell_quoted_and_other_braces_kept():
    values = {"openai_base_url": "http://127.0.0.1:1/v1", "otlp_endpoint": "http://127.0.0.1:2",
              "otlp_grpc_endpoint": "http://127.0.0.1:3", "port": "8080", "python": "/opt/my python/bin/python"}
    arguments = fill_command("{python} gw.py --port {port} --config '{\"a\": 1}' --up={openai_base_url}", values)
    assert arguments == ["/opt/my python/bin/python", "gw.py", "--port", "8080", "--config", '{"a": 1}',
                         "--up=http://127.0.0.1:1/v1"]
    assert fill_values({"OTEL_EXPORTER_OTLP_ENDPOINT": "{otlp_grpc_endpoint}"}, values) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:3"}


@pytest.mark.parametrize(("fill", "message"), [
    (lambda: fill_command("{python} gw.py --port {prot}", {}),
     "--gateway-cmd '{python} gw.py --port {prot}' has the unknown placeholder {prot}; did you mean {port}? the "
     "placeholders are {openai_base_url}, {fake_base_url}, {otlp_endpoint}, {otlp_grpc_endpoint}, {port}, {python}."),
    (lambda: fill_values({"OPENAI_BASE_URL": "{openai_url}"}, {}),
     "--env-file value OPENAI_BASE_URL= '{openai_url}' has the unknown placeholder {openai_url}; did you mean "
     "{openai_base_url}? the placeholders are"),
])
def test_an_unknown_placeholder_is_a_usage_error_naming_the_known_ones(fill, message: str):
    with pytest.raises(ConformUsageError) as raised:
        fill()
    assert str(raised.value).startswith(message)


def test_env_file_lines_and_a_bad_line_named(tmp_path: Path):
    env = tmp_path / "gw.env"
    env.write_text("# comment\n\nexport A=1\nB = 'two words'\nC=\"x=y\"\n")
    assert read_env_file(env) == {"A": "1", "B": "two words", "C": "x=y"}
    env.write_text("A=1\nnot a line\n")
    with pytest.raises(ConformUsageError, match=r"gw.env:2: 'not a line' is not KEY=VALUE"):
        read_env_file(env)


def test_spec_level_leaves_out_the_problems_the_reference_has_too_unless_strict():
    from testopeninference import get_span
    from testopeninference.conform.run import ConformOptions, level_findings

    golden = get_span("chat-bad-request")  # the reference's error spans carry exception.escaped as a string
    comparison = SpanComparison([], [], [])
    findings, shared = level_findings(ConformOptions(get_level("spec")), comparison, golden, golden)
    assert findings == () and any(line.startswith("exception.escaped") for line in shared), shared
    strict, none = level_findings(ConformOptions(get_level("spec"), strict_spec=True), comparison, golden, golden)
    assert none == () and [found.line for found in strict] == [f"{line} (the reference has it too)" for line in shared]


def test_the_scorecard_says_invalid_and_lists_the_problems_the_reference_has_too():
    from testopeninference.conform.outcomes import CassetteResult, Outcome, Scorecard
    from testopeninference.conform.reports.terminal import print_scorecard

    invalid = Finding("llm.system", "invalid", None, None, "llm.system: missing (required on LLM spans)")
    shared = ("exception.escaped (exception event): expected a boolean, got a string ('False')",)
    card = Scorecard((CassetteResult("chat-basic", "chat", Outcome.INVALID, (invalid,), shared=shared),
                      CassetteResult("chat-bad-request", "chat", Outcome.MATCH, shared=shared)),
                     "openinference", "spec", "gw", 1.0)
    out = io.StringIO()
    print_scorecard(card, out)
    text = out.getvalue()
    assert "chat-basic        invalid         llm.system: missing (required on LLM spans)" in text, text
    assert ("problems the reference goldens have too (not counted; --strict-spec counts them):\n"
            f"  {shared[0]}  (2 cassette(s))\n") in text, text
    assert text.endswith(": 1 match, 1 invalid.\n"), text


def test_a_baseline_of_another_convention_is_a_usage_error(tmp_path: Path):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("version: 1\nconvention: otel-genai\ncassettes: {}\n")
    status, err = conform("--baseline", str(baseline))
    assert status == 2, err
    assert err.startswith(f"Error: {baseline}: the baseline is for the otel-genai convention, this run scores "
                          "openinference; pass --convention otel-genai, or write a baseline for openinference"), err


def test_baseline_entries_without_a_reason_or_for_cassettes_not_scored_are_reported(tmp_path: Path):
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("version: 1\nconvention: openinference\ncassettes:\n"
                        "  chat-basic:\n  - {key: (outcome), kind: no span, reason: ''}\n"
                        "  chat-basc:\n  - {key: llm.system, kind: missing, reason: typo}\n"
                        "  chat-tools:\n  - {key: llm.system, kind: missing, reason: left out by -k}\n")
    from testopeninference.kit import FakeOpenAI
    from tests.helpers import CASSETTES

    gateway = FakeOpenAI(CASSETTES).start()  # a gateway that answers as the cassette did and exports no span
    out, err = io.StringIO(), io.StringIO()
    try:
        status = main(["conform", "--gateway-url", gateway.url, "--no-wait", "-k", "chat-basic and not azure",
                       "--baseline", str(baseline), "--timeout", "0.1"], out, err)
    finally:
        gateway.stop()
    text = out.getvalue()
    assert status == 0, text + err.getvalue()  # the baseline lists the no span (with no reason: warned)
    assert ("warning: 1 baseline entry without a reason (say why each difference is accepted): chat-basic: "
            "(outcome) no span (baseline line 5)\n") in text, text
    assert "baseline entries for chat-basc (line 7) name no cassette: unknown cassette 'chat-basc'" in text, text
    assert "Did you mean: chat-basic" in text, text
    assert "baseline entries for chat-tools (line 9) not used: the cassette was not scored\n" in text, text


def test_a_gateway_url_that_refuses_connections_exits_2_saying_refused_not_a_timeout():
    status, err = conform("-k", "chat-basic and not azure")
    assert status == 2, err
    assert err.startswith("Error: cassette chat-basic: POST http://127.0.0.1:9/v1/chat/completions: the connection to "
                          "http://127.0.0.1:9 was refused (ConnectError"), err
    assert err.rstrip().endswith("is the gateway running, and listening at http://127.0.0.1:9?"), err
    assert "within" not in err, err


@pytest.mark.parametrize("content", [b"version: 2\ninteractions:\n  - [\n", b"\xff\xfe not utf-8\n"])
def test_a_broken_cassette_file_exits_2_not_1(tmp_path: Path, content: bytes):
    """1 means a cassette does not match; a file conform cannot read is a setup failure."""
    from tests.helpers import CASSETTES, SPANS

    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    (cassettes / "chat-basic.yaml").write_bytes((CASSETTES / "chat-basic.yaml").read_bytes())
    (cassettes / "chat-broken.yaml").write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    status = main(["conform", "--cassettes-dir", str(cassettes), "--spans-dir", str(SPANS), "--gateway-url",
                   "http://127.0.0.1:9", "--no-wait"], out, err)
    assert status == 2, err.getvalue()
    assert err.getvalue().startswith(f"Error: {cassettes / 'chat-broken.yaml'}"), err.getvalue()


def test_conform_help_documents_each_exit_status(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["conform", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every cassette matches" in text
    assert "1 a cassette does not match (or is not covered by the baseline)" in text
    assert "2 conform could not score: a usage error, an unreadable or broken cassette, golden or baseline" in text


def test_gateway_output_since_a_mark_is_only_what_came_after_it_and_bounded():
    from testopeninference.conform.gateway_output import GatewayOutput

    output = GatewayOutput(kept=5)
    output.append("started")
    mark = output.mark()
    assert output.since(mark) == []
    for number in range(7):
        output.append(f"line {number}")
    assert output.since(mark) == [f"line {number}" for number in range(2, 7)]  # only the kept ones
    assert output.since(mark, limit=2) == ["line 5", "line 6"]
    assert output.since(output.mark() - 1) == ["line 6"]


def test_a_command_pasted_over_several_lines_is_joined_as_a_shell_joins_it():
    """Inside ``--gateway-cmd '...'`` the shell keeps each backslash-newline; conform drops it (an escaped
    backslash before a newline stays a backslash)."""
    values = {"port": "8080", "python": "/usr/bin/python3"}
    assert fill_command("env A=1 \\\n    B=2 {python} gw.py \\\r\n  --port {port}", values) == [
        "env", "A=1", "B=2", "/usr/bin/python3", "gw.py", "--port", "8080"]
    assert fill_command("echo a\\\\\nb", values) == ["echo", "a\\", "b"]

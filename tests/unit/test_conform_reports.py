"""The conform reports and baseline, from hand-made results: JUnit counts, the HTML matrix and its escaping,
baseline round trip and a malformed baseline's file and line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from testopeninference.compare import Finding
from testopeninference.conform.baseline import baseline_text, read_baseline
from testopeninference.conform.outcomes import CassetteResult, Outcome, Scorecard, key_tallies, outcome_finding
from testopeninference.conform.reports.html import scorecard_html
from testopeninference.conform.reports.json_report import scorecard_json
from testopeninference.conform.reports.junit import junit_xml
from testopeninference.errors import InvalidBaselineError

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
MISSING_SYSTEM = Finding("llm.system", "missing", "openai", None, "attribute 'llm.system': missing (expected 'openai')")
HOSTILE_VALUE = Finding("output.value", "different", "Hello", HOSTILE, f"attribute 'output.value': got {HOSTILE}")


def results() -> list[CassetteResult]:
    return [
        CassetteResult("chat-basic", "chat", Outcome.DIFFERS, (MISSING_SYSTEM, HOSTILE_VALUE)),
        CassetteResult("chat-tools", "chat", Outcome.DIFFERS, (MISSING_SYSTEM,)),
        CassetteResult("embeddings-basic", "embeddings", Outcome.MATCH),
        CassetteResult("chat-streaming", "chat", Outcome.UPSTREAM_DRIFT,
                       (outcome_finding(Outcome.UPSTREAM_DRIFT, "the fake upstream refused POST"),), (),
                       "the fake upstream refused POST /v1/chat/completions"),
        CassetteResult("completion-basic", "completion", Outcome.NO_SPAN,
                       (outcome_finding(Outcome.NO_SPAN, "expected exactly one"),), (), "expected exactly one"),
    ]


def card(found: list[CassetteResult] | None = None) -> Scorecard:
    return Scorecard(tuple(found or results()), "openinference", "reference", "my-gateway", 1.5)


def test_key_tallies_count_cassettes_per_key_and_kind():
    tallies = {tally.key: tally for tally in key_tallies(results())}
    assert (tallies["llm.system"].missing, tallies["llm.system"].total) == (2, 2)
    assert (tallies["output.value"].different, tallies["output.value"].total) == (1, 1)
    assert "(outcome)" not in tallies


def test_junit_has_one_testcase_per_cassette_and_the_right_counts():
    root = ElementTree.fromstring(junit_xml(card()))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "3", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["chat-basic", "chat-tools", "embeddings-basic", "chat-streaming", "completion-basic"]
    failure = cases["chat-basic"].find("failure")
    assert failure is not None and failure.text is not None
    assert "attribute 'llm.system': missing" in failure.text and HOSTILE in failure.text  # escaped by XML, intact
    assert cases["embeddings-basic"].find("failure") is None
    assert cases["chat-streaming"].find("error") is not None


def test_html_is_a_matrix_of_cassettes_by_keys_and_escapes_every_span_value():
    page = scorecard_html(card())
    assert "<script>alert" not in page and "<img src=x" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own, inline
    assert "http://" not in page and "https://" not in page  # nothing fetched
    assert '<th class="row">chat-basic</th>' in page and "<div>llm.system</div>" in page
    assert 'class="missing" title="chat-basic / llm.system: missing' in page
    assert 'class="notcompared"' in page and 'class="match"' in page


def test_html_matrix_keeps_cassette_and_outcome_in_view_and_narrows_for_many_keys():
    few = scorecard_html(card())
    assert '<table class="matrix" style="--row:' in few and '<th class="outcome"><div>outcome</div></th>' in few
    many = [Finding(f"llm.key.{number}", "missing", "x", None, f"attribute 'llm.key.{number}': missing")
            for number in range(70)]
    dense = scorecard_html(card([CassetteResult("chat-basic", "chat", Outcome.DIFFERS, tuple(many))]))
    assert '<table class="matrix dense" style="--row:' in dense and dense.count('<td data-cell class="missing"') == 70


def test_html_says_how_many_cassettes_pass_with_the_baseline():
    accepted = [result.with_accepted(result.findings) for result in results()]
    gated = Scorecard(tuple(accepted), "openinference", "reference", "my-gateway", 1.5, "baseline.yaml")
    assert '<span class="accepted">5 of 5 pass with the baseline</span>' in scorecard_html(gated)
    assert "pass with the baseline" not in scorecard_html(card())


def test_json_report_lists_findings_and_the_summary():
    data = json.loads(scorecard_json(card()))
    assert data["exit_status"] == 1
    assert data["summary"] == {"match": 1, "differs": 2, "upstream drift": 1, "no span": 1, "gateway error": 0,
                               "invalid": 0}
    assert data["cassettes"][0]["findings"][1]["actual"] == HOSTILE
    assert data["keys"][0]["key"] == "llm.system" and data["keys"][0]["missing"] == 2


def test_baseline_round_trip_accepts_what_it_lists_and_reports_stale_entries(tmp_path: Path):
    path = tmp_path / "baseline.yaml"
    path.write_text(baseline_text(results(), "openinference"))
    baseline = read_baseline(path)
    accepted = baseline.apply(results())
    assert all(result.passed for result in accepted)
    assert card(accepted).exit_status == 0
    fixed = [CassetteResult("chat-basic", "chat", Outcome.DIFFERS, (HOSTILE_VALUE,)), *results()[1:]]
    assert [entry.key for entry in baseline.stale(baseline.apply(fixed))] == ["llm.system"]
    new = [CassetteResult("embeddings-basic", "embeddings", Outcome.DIFFERS, (MISSING_SYSTEM,))]
    assert not baseline.apply(new)[0].passed


def test_writing_over_a_baseline_keeps_the_reasons_of_entries_still_found(tmp_path: Path):
    from testopeninference.conform.baseline import write_baseline

    path = tmp_path / "baseline.yaml"
    write_baseline(path, results(), "openinference")
    path.write_text(path.read_text().replace("reason: ''", "reason: the gateway names no system", 1))
    kept = read_baseline(path).entries[0]
    write_baseline(path, results(), "openinference")
    again = read_baseline(path).entries[0]
    assert (again.cassette, again.key, again.kind, again.reason) == (kept.cassette, kept.key, kept.kind,
                                                                     "the gateway names no system")
    assert sum(1 for entry in read_baseline(path).entries if entry.reason) == 1


def test_baseline_values_read_the_same_on_any_machine():
    trace = ('Traceback (most recent call last):\n  File "/home/me/.venv/lib/python3.12/site-packages/litellm/utils.py",'
             ' line 3, in f\n    x()\n    ^^^\nValueError: http://127.0.0.1:43121/v1 refused')
    found = Finding("exception.stacktrace", "different", "", trace, "line")
    text = baseline_text([CassetteResult("chat-basic", "chat", Outcome.DIFFERS, (found,))], "openinference")
    assert "site-packages/litellm/utils.py" in text and "/home/me" not in text
    assert "43121" not in text and "^^^" not in text


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("version: 1\ncassettes:\n  chat-basic:\n  - key: llm.system\n    kind: sideways\n", 5, "kind 'sideways'"),
    ("version: 2\ncassettes: {}\n", 1, "'version' must be 1"),
    ("version: 1\ncassettes:\n  chat-basic:\n  - kind: missing\n", 4, "needs a 'key'"),
    ("version: 1\ncassettes:\n  chat-basic: []\n  chat-basic: []\n", 4, "'chat-basic' appears twice"),
    ("version: 1\ncassettes: [\n", 3, "not valid YAML"),
    ("version: 1\ncassettes:\n  chat-basic: &a []\n", 3, "not valid YAML (YAML anchor"),
])
def test_a_malformed_baseline_is_one_error_naming_file_and_line(tmp_path: Path, text: str, line: int, problem: str):
    path = tmp_path / "baseline.yaml"
    path.write_text(text)
    with pytest.raises(InvalidBaselineError) as raised:
        read_baseline(path)
    assert str(raised.value).startswith(f"{path}:{line}: ") and problem in str(raised.value), str(raised.value)

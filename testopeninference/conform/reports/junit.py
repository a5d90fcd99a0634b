"""The scorecard as JUnit XML (``--junit FILE``), for CI dashboards (Jenkins, GitLab, GitHub annotations).

One ``testsuite`` with one ``testcase`` per cassette (``classname`` the
endpoint). A cassette that differs, has no span or gets a gateway error is a
``failure`` (message: its lines); an upstream drift, the fake server refusing
the request the gateway made, is an ``error``: the comparison never ran.
Baseline-accepted differences pass, listed in ``system-out``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from testopeninference.conform.outcomes import COMPARED, CassetteResult, Outcome, Scorecard
from testopeninference.recorder.atomic import write_atomic

SUITE = "testopeninference.conform"


def junit_xml(card: Scorecard) -> str:
    failures = [r for r in card.results if not r.passed and r.outcome is not Outcome.UPSTREAM_DRIFT]
    errors = [r for r in card.results if not r.passed and r.outcome is Outcome.UPSTREAM_DRIFT]
    suites = ElementTree.Element("testsuites", tests=str(len(card.results)), failures=str(len(failures)),
                                 errors=str(len(errors)), time=f"{card.seconds:.3f}")
    suite = ElementTree.SubElement(suites, "testsuite", name=f"{SUITE}.{card.convention}",
                                   tests=str(len(card.results)), failures=str(len(failures)),
                                   errors=str(len(errors)), skipped="0", time=f"{card.seconds:.3f}")
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (("gateway", card.gateway), ("level", card.level), ("baseline", card.baseline or "")):
        ElementTree.SubElement(properties, "property", name=name, value=_text(value))
    for result in card.results:
        suite.append(_testcase(result))
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


def _testcase(result: CassetteResult) -> ElementTree.Element:
    case = ElementTree.Element("testcase", classname=f"{SUITE}.{result.endpoint}", name=result.cassette,
                               time=f"{result.seconds:.3f}")
    if not result.passed:
        lines = ([found.line for found in result.failing] if result.outcome in COMPARED
                 else [result.detail])
        tag = "error" if result.outcome is Outcome.UPSTREAM_DRIFT else "failure"
        element = ElementTree.SubElement(case, tag, type=result.outcome.value,
                                         message=_text(f"{result.outcome.value}: " + "; ".join(lines)))
        element.text = _text("\n".join(lines))
    if result.accepted:
        out = ElementTree.SubElement(case, "system-out")
        out.text = _text("accepted by the baseline:\n" + "\n".join(found.line for found in result.accepted))
    return case


def _text(text: str) -> str:
    """XML 1.0 has no place for most control characters (a span may hold any): they become U+FFFD."""
    return "".join(c if c in "\t\n\r" or (ord(c) >= 0x20 and c not in "\ufffe\uffff") else "\ufffd" for c in text)


def write_junit(path: Path, card: Scorecard) -> None:
    write_atomic(path, junit_xml(card))

"""pytest plugin (registered through the ``pytest11`` entry point): golden spans in gateway tests.

Options: ``--record-spans`` records missing goldens and ``--record-spans=all``
re-records every golden used (the same as ``RECORD_SPANS=true`` / ``all``);
``--span-convention NAME`` chooses the convention (``TESTOPENINFERENCE_CONVENTION``).
Fixtures: ``span_settings`` (the run's settings, session scoped; the options
are carried here, never written to ``os.environ``), ``fake_openai`` (the replay
server, session scoped), ``otlp_collector_session`` (an OTLP endpoint for a
session-scoped gateway, never emptied: select by trace id), ``otlp_collector``
(the same collector, emptied for each test), ``golden_span`` (a golden by
cassette name). While recording, each
golden written is one line of progress, with a summary at the end; the
session also warns about stale goldens at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.collector import InMemoryOTLPCollector
from testopeninference.recorder.config import Settings
from testopeninference.recorder.conventions import CONVENTIONS
from testopeninference.compare import span_differences
from testopeninference.errors import TestOpenInferenceError
from testopeninference.recorder.session import RecordResult
from testopeninference.goldens import (close_recorders, golden_span as _golden_span, on_progress, on_recorded,
                                      use_option_defaults)
from testopeninference.kit import FakeOpenAI, OTLPCollector
from testopeninference.status import golden_statuses

RECORD_CHOICES = ("missing", "all")


class GoldenSession:
    """Per-run state: the record mode and convention the options asked for, and the stale goldens at the end."""

    def __init__(self, record: str | None, convention: str | None) -> None:
        try:  # the options win over RECORD_SPANS and TESTOPENINFERENCE_CONVENTION, which still apply without them
            self.settings = Settings.from_env(record_mode=record, convention=convention)
        except TestOpenInferenceError as error:  # a bad [tool.testopeninference] table, say: one usage error
            raise pytest.UsageError(f"testopeninference: {error}") from None
        # get_span() called by a test sees the options too, through goldens' defaults, never through os.environ.
        self._stop_defaults = use_option_defaults(record_mode=record, convention=convention)
        self.stale: list[str] = []
        self.check_error = ""
        self.recorded: list[RecordResult] = []
        self._reporter = self._capture = None
        self._stop_listening = on_recorded(self._on_recorded)
        self._stop_progress = on_progress(self._write)

    def report_to(self, config: pytest.Config) -> None:
        """Write one line per golden recorded to pytest's terminal (silent where it has none, as in xdist workers)."""
        self._reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._capture = config.pluginmanager.get_plugin("capturemanager")

    def _on_recorded(self, result: RecordResult) -> None:
        self.recorded.append(result)
        if self._reporter is not None:
            what = "recorded" if result.recorded else "found (written by another process)"
            self._write(f"{what} {result.path} ({result.seconds:.2f} s)")

    def _write(self, line: str) -> None:
        """One line on pytest's terminal, out of the test's captured output (nothing where there is no terminal)."""
        if self._reporter is None:
            return
        paused = self._capture.global_and_fixture_disabled() if self._capture else contextlib.nullcontext()
        with paused:
            self._reporter.ensure_newline()
            self._reporter.write_line(f"testopeninference: {line}")

    def summary(self) -> str | None:
        written = [r for r in self.recorded if r.recorded]
        if not self.recorded:
            return None
        seconds = sum(r.seconds for r in written)
        line = f"testopeninference: {len(written)} golden(s) recorded in {seconds:.1f} s"
        found = len(self.recorded) - len(written)
        return line + (f", {found} written by another process" if found else "")

    def finish(self, exitstatus: int) -> int:
        self._stop_listening()
        self._stop_progress()
        close_recorders()
        self._stop_defaults()
        try:
            self.stale = [f"{s.cassette} ({s.reason})" for s in golden_statuses(self.settings) if s.state == "stale"]
        except Exception as error:  # never fail a run over the warning itself
            self.check_error = str(error)
        return exitstatus

_SESSION = pytest.StashKey[GoldenSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testopeninference", "golden OpenInference spans")
    group.addoption(
        "--record-spans",
        dest="record_spans",
        nargs="?",
        const="missing",
        default=None,
        choices=RECORD_CHOICES,
        help="record missing golden spans; --record-spans=all re-records every golden used",
    )
    group.addoption(
        "--span-convention",
        dest="span_convention",
        default=None,
        choices=list(CONVENTIONS),
        help="instrumentation convention of the goldens (default: TESTOPENINFERENCE_CONVENTION or openinference)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    options = session.config.getoption
    golden = GoldenSession(options("record_spans"), options("span_convention"))
    golden.report_to(session.config)
    session.config.stash[_SESSION] = golden


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    golden = session.config.stash.get(_SESSION, None)
    if golden is not None:
        session.exitstatus = golden.finish(exitstatus)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    golden = config.stash.get(_SESSION, None)
    if golden and golden.summary():
        terminalreporter.write_line(golden.summary())
    if golden and golden.stale:
        terminalreporter.section("testopeninference: stale golden spans", yellow=True)
        for line in golden.stale:
            terminalreporter.line(f"  {line}")
        terminalreporter.line("Re-record them with: testopeninference record --force NAME ...")
    if golden and golden.check_error:
        terminalreporter.section("testopeninference: could not check goldens for staleness", yellow=True)
        terminalreporter.line(f"  {golden.check_error}")


def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """``assert golden == span`` explains itself with the lenient differences."""
    if op != "==" or not (isinstance(left, Span) and isinstance(right, Span)):
        return None
    differences = span_differences(left, right)
    if not differences:
        return ["spans differ only in what the lenient comparison ignores (ids, times, flags);",
                "use testopeninference.assert_span_equal to compare them leniently"]
    return ["spans differ:", *(f"  {line}" for line in differences)]


@pytest.fixture(scope="session")
def span_settings(pytestconfig: pytest.Config) -> Settings:
    """The run's ``Settings`` (options, then environment, then ``[tool.testopeninference]``), which
    ``golden_span`` and ``fake_openai`` use; override this fixture in a ``conftest.py`` to change them."""
    return pytestconfig.stash[_SESSION].settings


@pytest.fixture(scope="session")
def fake_openai(span_settings: Settings) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server replaying the cassettes; point the gateway's upstream at ``.base_url``."""
    server = FakeOpenAI(*span_settings.cassette_dirs).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def otlp_collector_session() -> Iterator[OTLPCollector]:
    """One OTLP collector for the whole run, for a session-scoped gateway fixture (``.endpoint``); never
    emptied: tests select their spans by the trace id ``send_cassette`` returns."""
    with InMemoryOTLPCollector() as collector:
        yield OTLPCollector(collector)


@pytest.fixture
def otlp_collector(otlp_collector_session: OTLPCollector) -> Iterator[OTLPCollector]:
    """The session's collector for one test, emptied at its start and end (same endpoint)."""
    otlp_collector_session.clear()
    yield OTLPCollector(otlp_collector_session.collector)
    otlp_collector_session.clear()


@pytest.fixture
def golden_span(span_settings: Settings) -> Callable[..., Span]:
    """``golden_span("chat-basic", convention=None)``: the golden Span, recorded first if the options allow."""

    def get(cassette: str, convention: str | None = None) -> Span:
        chosen = dataclasses.replace(span_settings, convention=convention) if convention else span_settings
        return _golden_span(chosen, cassette)

    return get

"""pytest plugin (registered through the ``pytest11`` entry point): golden spans in gateway tests.

Options: ``--record-spans`` records missing goldens and ``--record-spans=all``
re-records every golden used (the same as ``RECORD_SPANS=true`` / ``all``);
``--span-convention NAME`` chooses the convention (``TESTOPENINFERENCE_CONVENTION``).
Fixtures: ``fake_openai`` (the replay server, session scoped),
``otlp_collector`` (an OTLP/HTTP endpoint for the gateway, cleared for each
test), ``golden_span`` (a golden by cassette name). While recording, each
golden written is one line of progress, with a summary at the end; the
session also warns about stale goldens at the end.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.collector import InMemoryOTLPCollector
from testopeninference.recorder.config import CONVENTION, RECORD_SPANS, Settings
from testopeninference.recorder.conventions import CONVENTIONS
from testopeninference.compare import span_differences
from testopeninference.errors import TestOpenInferenceError
from testopeninference.recorder.session import RecordResult
from testopeninference.goldens import close_recorders, golden_span as _golden_span, on_progress, on_recorded
from testopeninference.goldens import use_recording_service
from testopeninference.recorder.shared_recording import RecordingService
from testopeninference.kit import FakeOpenAI, OTLPCollector
from testopeninference.status import golden_statuses

RECORD_CHOICES = ("missing", "all")


class GoldenSession:
    """Per-run state: the record mode and convention the options asked for, and the stale goldens at the end."""

    def __init__(self, record: str | None, convention: str | None) -> None:
        # get_span() reads these like a user's RECORD_SPANS and TESTOPENINFERENCE_CONVENTION.
        self._saved_env = {name: os.environ.get(name) for name in (RECORD_SPANS, CONVENTION)}
        for name, value in ((RECORD_SPANS, record), (CONVENTION, convention)):
            if value is not None:
                os.environ[name] = value
        try:
            self.settings = Settings.from_env()
        except TestOpenInferenceError as error:  # a bad [tool.testopeninference] table, say: one usage error
            self._restore_env()
            raise pytest.UsageError(f"testopeninference: {error}") from None
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
        self._restore_env()
        try:
            self.stale = [f"{s.cassette} ({s.reason})" for s in golden_statuses(self.settings) if s.state == "stale"]
        except Exception as error:  # never fail a run over the warning itself
            self.check_error = str(error)
        return exitstatus

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_SESSION = pytest.StashKey[GoldenSession]()
_SERVICE = pytest.StashKey[RecordingService]()
SERVICE_INPUT = "testopeninference_recording_service"
"""The key of ``workerinput`` that gives pytest-xdist workers the run's recording service."""


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """In the pytest-xdist controller: every worker records through one service (one proxy per convention)."""
    if _SERVICE not in node.config.stash:
        node.config.stash[_SERVICE] = RecordingService().start()
    node.workerinput[SERVICE_INPUT] = node.config.stash[_SERVICE].address


def pytest_configure(config: pytest.Config) -> None:
    address = getattr(config, "workerinput", {}).get(SERVICE_INPUT)
    if address:
        use_recording_service(address)


def pytest_unconfigure(config: pytest.Config) -> None:
    service = config.stash.get(_SERVICE, None)
    if service is not None:  # after every worker finished: their proxies go with it
        service.stop()


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
def fake_openai(pytestconfig: pytest.Config) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server replaying the cassettes; point the gateway's upstream at ``.base_url``."""
    server = FakeOpenAI(*pytestconfig.stash[_SESSION].settings.cassette_dirs).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _otlp_collector_server() -> Iterator[InMemoryOTLPCollector]:
    with InMemoryOTLPCollector() as collector:
        yield collector


@pytest.fixture
def otlp_collector(_otlp_collector_server: InMemoryOTLPCollector) -> Iterator[OTLPCollector]:
    """An OTLP/HTTP endpoint for the gateway (``.endpoint``), empty at the start of each test."""
    _otlp_collector_server.clear()
    yield OTLPCollector(_otlp_collector_server)
    _otlp_collector_server.clear()


@pytest.fixture
def golden_span(pytestconfig: pytest.Config) -> Callable[..., Span]:
    """``golden_span("chat-basic", convention=None)``: the golden Span, recorded first if the options allow."""
    settings = pytestconfig.stash[_SESSION].settings

    def get(cassette: str, convention: str | None = None) -> Span:
        chosen = Settings.from_env(cassettes_dir=settings.cassettes_dir, spans_dir=settings.spans_dir,
                                   convention=convention)
        return _golden_span(chosen, cassette)

    return get

"""pytest plugin (registered through the ``pytest11`` entry point): golden spans in gateway tests.

Options: ``--record-spans`` records missing goldens and ``--record-spans=all``
re-records every golden used (the same as ``RECORD_SPANS=true`` / ``all``);
``--span-convention NAME`` chooses the convention (``TESTOPENINFERENCE_CONVENTION``).
``--ignore-body-key KEY`` (and the ``testopeninference_ignore_body_keys`` ini
option) names request body keys the fake server tolerates.
Fixtures: ``span_settings`` (the run's settings, session scoped; the options
are carried here, never written to ``os.environ``), ``fake_openai`` (the replay
server, session scoped; a test during which it refused a request fails at
teardown), ``otlp_collector_session`` (OTLP/HTTP and OTLP/gRPC endpoints for a
session-scoped gateway, never emptied: select by trace id), ``otlp_collector``
(the same collector, emptied for each test), ``golden_span`` (a golden by
cassette name). While recording, each
golden written is one line of progress, with a summary at the end; the
session also warns about stale goldens at the end. Each span ``llm_span`` picks
during a test is one line of a "testopeninference" section of that test's
report (shown on failure and with ``-rA``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator

import pluggy
import pytest
from _pytest._code.code import ExceptionRepr

from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder.conventions import CONVENTIONS
from testopeninference.errors import TestOpenInferenceError, record_command
from testopeninference.goldens import (close_recorders, golden_span as _golden_span, on_progress, on_recorded,
                                      use_option_defaults)
from testopeninference.goldens import use_recording_service
from testopeninference.span_selection import SpanPick, on_pick

if TYPE_CHECKING:  # the servers' modules load with the first fixture that needs them, not with every pytest run
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from testopeninference.kit import FakeOpenAI, OTLPCollector
    from testopeninference.recorder.fake_openai import CassetteReplayer
    from testopeninference.recorder.record_result import RecordResult
    from testopeninference.recorder.shared_recording import RecordingService

RECORD_CHOICES = ("missing", "all")
IGNORE_BODY_KEYS_INI = "testopeninference_ignore_body_keys"
REPORT_SECTION = "testopeninference"


class GoldenSession:
    """Per-run state: the record mode and convention the options asked for, and the stale goldens at the end."""

    def __init__(self, record: str | None, convention: str | None, worker: bool = False) -> None:
        try:  # the options win over RECORD_SPANS and TESTOPENINFERENCE_CONVENTION, which still apply without them
            self.settings = Settings.from_env(record_mode=record, convention=convention)
        except TestOpenInferenceError as error:  # a bad [tool.testopeninference] table, say: one usage error
            raise pytest.UsageError(f"testopeninference: {error}") from None
        # get_span() called by a test sees the options too, through goldens' defaults, never through os.environ.
        self._stop_defaults = use_option_defaults(record_mode=record, convention=convention)
        self.stale: list[str] = []
        self.worker = worker  # an xdist worker: the controller records for it and reports at the end
        self.check_error = ""
        self._release_fork_server: Callable[[], None] = lambda: None
        self.recorded: list[RecordResult] = []
        self._reporter = self._capture = None
        self._stop_listening = on_recorded(self._on_recorded)
        self._stop_progress = on_progress(self._write)

    def prepare_recording(self) -> None:
        """Re-recording everything (``--record-spans=all``): the proxies' fork server starts now, in the
        background (not in xdist workers: their recordings go to the controller's service)."""
        if self.settings.record_mode is RecordMode.ALL and not self.worker:
            from testopeninference.recorder.backends.local import prestart_fork_server

            self._release_fork_server = prestart_fork_server(self.settings)

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
        self._release_fork_server()
        self._stop_defaults()
        if self.worker:  # the staleness scan is reported by the controller, which has the terminal
            return exitstatus
        from testopeninference.status import BROKEN, golden_statuses

        try:
            statuses = golden_statuses(self.settings)
        except Exception as error:  # never fail a run over the warning itself
            self.check_error = str(error)
            return exitstatus
        self.stale = [f"{s.cassette} ({s.reason})" for s in statuses if s.state == "stale"]
        self.check_error = "\n  ".join(s.reason for s in statuses if s.state == BROKEN)  # noted, as before
        return exitstatus


class PickLog:
    """The spans picked during the running test (``llm_span``), for a section of its report."""

    def __init__(self) -> None:
        self._picks: list[SpanPick] = []
        self._lock = threading.Lock()
        self.stop = on_pick(self._add)

    def _add(self, pick: SpanPick) -> None:
        with self._lock:
            self._picks.append(pick)

    def text(self) -> str:
        """One line per pick so far in this test (setup included), empty when there were none."""
        with self._lock:
            return "\n".join(pick.describe() for pick in self._picks)

    def clear(self) -> None:
        with self._lock:
            self._picks.clear()


_SESSION = pytest.StashKey[GoldenSession]()
_FAKE_OPENAI = pytest.StashKey["FakeOpenAI"]()
_SERVICE = pytest.StashKey["RecordingService"]()
SERVICE_INPUT = "testopeninference_recording_service"
"""The key of ``workerinput`` that gives pytest-xdist workers the run's recording service."""
WORKER_OUTPUT = "testopeninference_summary"
"""The key of ``workeroutput`` by which a pytest-xdist worker hands its closing summary to the controller."""


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # an xdist WorkerController (xdist is optional)
    """In the pytest-xdist controller of a run that records: every worker records through one service (one
    proxy per convention). It serves from a thread of its own while the workers start (the kernel queues
    their connections until then); a run that does not record starts none."""
    config = node.config
    if _SERVICE not in config.stash:
        if not _records(config):
            return
        from testopeninference.recorder.shared_recording import RecordingService

        config.stash[_SERVICE] = RecordingService().start_in_background()
    node.workerinput[SERVICE_INPUT] = config.stash[_SERVICE].address


def _records(config: pytest.Config) -> bool:
    """Whether the run's options or environment ask to record goldens (the service is for recording only)."""
    try:
        return Settings.from_env(record_mode=config.getoption("record_spans")).record_mode != RecordMode.NONE
    except TestOpenInferenceError:
        return False  # the session's start reports a bad setting, once


def pytest_configure(config: pytest.Config) -> None:
    address = getattr(config, "workerinput", {}).get(SERVICE_INPUT)
    if address:
        use_recording_service(address)


def pytest_unconfigure(config: pytest.Config) -> None:
    service = config.stash.get(_SERVICE, None)
    if service is not None:  # after every worker finished: their proxies go with it
        service.stop()


_PICKS = pytest.StashKey[PickLog]()
_TOLERATED = pytest.StashKey[dict[str, None]]()  # the body keys every fake_openai used by a test tolerated
_REFUSALS_FROM = pytest.StashKey["tuple[CassetteReplayer, int]"]()  # a test's server and its first refusal
_CHECKED = pytest.StashKey["weakref.WeakKeyDictionary[CassetteReplayer, int]"]()  # refusals already reported


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
    group.addoption(
        "--ignore-body-key",
        dest="ignore_body_keys",
        action="append",
        default=[],
        metavar="KEY",
        help="a request body key the fake_openai server leaves out of matching (repeatable; dotted, * for any "
        "key or list index: tools.*.strict); added to the ini option and [tool.testopeninference] ignore-body-keys",
    )
    parser.addini(
        IGNORE_BODY_KEYS_INI,
        type="linelist",
        default=[],
        help="request body keys the fake_openai server leaves out of matching, one per line (tools.*.strict)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    options = session.config.getoption
    golden = GoldenSession(options("record_spans"), options("span_convention"),
                           worker=hasattr(session.config, "workerinput"))
    golden.report_to(session.config)
    golden.prepare_recording()
    session.config.stash[_SESSION] = golden
    session.config.stash[_PICKS] = PickLog()
    session.config.stash[_TOLERATED] = {}
    try:
        ignore_body_keys(session.config)
    except TestOpenInferenceError as error:  # a malformed key: one usage error, not one per test
        raise pytest.UsageError(f"testopeninference: {error}") from None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    golden = session.config.stash.get(_SESSION, None)
    if golden is not None:
        session.exitstatus = golden.finish(exitstatus)
    picks = session.config.stash.get(_PICKS, None)
    if picks is not None:
        picks.stop()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its summary is printed by the controller
        workeroutput[WORKER_OUTPUT] = _worker_summary(session.config)


def _worker_summary(config: pytest.Config) -> dict[str, list[Any]]:
    """What a worker's closing lines would say, as plain values execnet can send: goldens recorded, keys tolerated."""
    golden = config.stash.get(_SESSION, None)
    recorded = [[str(r.cassette), str(r.path), r.recorded, r.seconds] for r in golden.recorded] if golden else []
    return {"recorded": recorded, "tolerated": _tolerated(config)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:  # an xdist WorkerController (xdist is optional)
    """In the xdist controller: gather each worker's summary, so the closing lines are printed once, here."""
    summary = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    golden = node.config.stash.get(_SESSION, None)
    if not summary or golden is None:
        return
    from testopeninference.recorder.record_result import RecordResult

    golden.recorded.extend(RecordResult(name, Path(path), recorded, seconds)
                           for name, path, recorded, seconds in summary["recorded"])
    node.config.stash.setdefault(_TOLERATED, {}).update(dict.fromkeys(summary["tolerated"]))


def _tolerated(config: pytest.Config) -> list[str]:
    """The body keys tolerated in this process: the plugin's fake server's, and those of every one a test used."""
    fake = config.stash.get(_FAKE_OPENAI, None)
    own = fake.ignore_body_keys if fake is not None else ()
    return list(dict.fromkeys([*own, *config.stash.get(_TOLERATED, {})]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """The spans picked so far in this test, as a "testopeninference" section of each of its reports."""
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and report.failed:
        _point_to_refusals(item, report)
    picks = item.config.stash.get(_PICKS, None)
    text = picks.text() if picks is not None else ""
    if text:
        report.sections.append((REPORT_SECTION, text))


def _point_to_refusals(item: pytest.Item, report: pytest.TestReport) -> None:
    """A test that failed after the fake server refused a request: the refusal is the likely cause (a span
    mismatch or a gateway error follows from it), so the failure itself quotes it."""
    replayer, mark = item.stash.get(_REFUSALS_FROM, (None, 0))
    refused = replayer.errors_since(mark) if replayer is not None else []
    if not refused:
        return
    lines = "\n".join(f"  {error.describe()}" for error in refused)
    text = (f"the fake OpenAI server refused {len(refused)} request(s) during this test, the likely cause of "
            f"this failure (the gateway changed the request; fix that first):\n{lines}")
    if isinstance(report.longrepr, ExceptionRepr):
        report.longrepr.addsection(REPORT_SECTION, text)
    else:
        report.sections.append((REPORT_SECTION, text))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, None]:
    """Each test's picks start empty; picks between tests (a session fixture's teardown) belong to none."""
    picks = item.config.stash.get(_PICKS, None)
    if picks is not None:
        picks.clear()
    yield
    if picks is not None:
        picks.clear()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    golden = config.stash.get(_SESSION, None)
    summary = golden.summary() if golden else None
    if summary:
        terminalreporter.write_line(summary)
    if golden and golden.stale:
        terminalreporter.section("testopeninference: stale golden spans", yellow=True)
        for line in golden.stale:
            terminalreporter.line(f"  {line}")
        terminalreporter.line(f"Re-record them with: {record_command('NAME ...')}")
    tolerated = _tolerated(config)
    if tolerated:
        keys = ", ".join(tolerated)
        terminalreporter.write_line(f"testopeninference: request body keys the fake OpenAI server tolerated: {keys}")
    if golden and golden.check_error:
        terminalreporter.section("testopeninference: could not check goldens for staleness", yellow=True)
        terminalreporter.line(f"  {golden.check_error}")


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> list[str] | None:
    """``assert golden == span`` explains itself with the lenient differences; ``-vv`` shows values whole."""
    trace_pb2 = sys.modules.get("opentelemetry.proto.trace.v1.trace_pb2")  # no Span exists before it is imported
    if op != "==" or trace_pb2 is None or not (isinstance(left, trace_pb2.Span) and isinstance(right, trace_pb2.Span)):
        return None
    from testopeninference.compare import span_differences

    verbosity = config.get_verbosity() if hasattr(config, "get_verbosity") else config.option.verbose  # pytest < 8
    differences = span_differences(left, right, full=verbosity >= 2)
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
def fake_openai(pytestconfig: pytest.Config, span_settings: Settings) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server replaying the cassettes; point the gateway's upstream at ``.base_url``.

    A test during which it refused a request fails at teardown, quoting each refusal."""
    from testopeninference.kit import FakeOpenAI

    server = FakeOpenAI(*span_settings.cassette_dirs, ignore_body_keys=ignore_body_keys(pytestconfig))
    pytestconfig.stash[_FAKE_OPENAI] = server
    server.start()
    yield server
    server.stop()


def ignore_body_keys(config: pytest.Config) -> list[str]:
    """The tolerated body keys: ``[tool.testopeninference] ignore-body-keys``, the ini option and
    ``--ignore-body-key``, all of them (checked at the session's start)."""
    from testopeninference.recorder.matchers import parse_ignore_body_keys

    settings = config.stash[_SESSION].settings
    keys = [*settings.ignore_body_keys, *config.getini(IGNORE_BODY_KEYS_INI), *config.getoption("ignore_body_keys")]
    return list(parse_ignore_body_keys(keys))


@pytest.fixture(autouse=True)
def _fail_on_refused_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test that uses ``fake_openai`` (directly or through a gateway fixture) when the server refused
    one of the requests made during it: otherwise the refusal is seen only inside the gateway's error."""
    if "fake_openai" not in request.fixturenames:
        yield
        return
    fake = request.getfixturevalue("fake_openai")  # the plugin's, or one a conftest or test module defines
    request.config.stash.setdefault(_TOLERATED, {}).update(dict.fromkeys(fake.ignore_body_keys))
    replayer = fake.replayer
    # From where the last test using this server stopped looking: session fixtures (a gateway's start-up)
    # are set up before this per-test fixture, and their refusals belong to the first test that needs them.
    checked = request.config.stash.setdefault(_CHECKED, weakref.WeakKeyDictionary())
    mark = checked.get(replayer, 0)
    request.node.stash[_REFUSALS_FROM] = (replayer, mark)
    yield
    checked[replayer] = replayer.refusal_count
    refused = replayer.errors_since(mark)
    if refused:
        lines = "\n".join(f"  {error.describe()}" for error in refused)
        pytest.fail(f"the fake OpenAI server refused {len(refused)} request(s) during this test:\n{lines}",
                    pytrace=False)


@pytest.fixture(scope="session")
def otlp_collector_session(span_settings: Settings) -> Iterator[OTLPCollector]:
    """One OTLP collector for the whole run, for a session-scoped gateway fixture: ``.endpoint`` (OTLP/HTTP)
    and ``.grpc_endpoint`` (OTLP/gRPC on a free port, unless ``TESTOPENINFERENCE_GRPC=false``); never emptied:
    tests select their spans by the trace id ``send_cassette`` returns."""
    from testopeninference.kit import OTLPCollector
    from testopeninference.recorder.collector import InMemoryOTLPCollector

    with InMemoryOTLPCollector(grpc_port=0 if span_settings.grpc else None) as collector:
        yield OTLPCollector(collector)


@pytest.fixture
def otlp_collector(otlp_collector_session: OTLPCollector) -> Iterator[OTLPCollector]:
    """The session's collector for one test (same endpoints), emptied at its start and end."""
    from testopeninference.kit import OTLPCollector

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

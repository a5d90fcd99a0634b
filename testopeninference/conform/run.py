"""Driving a gateway through the cassettes: the fake upstream and the collector it talks to, and the score.

``ConformRun`` starts the fake OpenAI server (the gateway's upstream) and the
OTLP collector (HTTP and gRPC); ``score`` sends each cassette in a trace of its
own (``kit.send_cassette``), then decides its outcome (``outcomes``): the fake
server's refusals for that request, the gateway's status against the
cassette's, THE LLM span of the trace (``kit.OTLPCollector.llm_span``) and its
comparison with the golden (``compare_spans(gateway=True)``) under the level's
rules (``levels``). Cassettes are sent one at a time, so every refusal belongs
to the request in flight, even one the fake server could not attribute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import TracebackType

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.compare import Finding, SpanComparison, compare_spans
from testopeninference.conform.gateway_output import GatewayOutput, quoted
from testopeninference.conform.levels import Level, spec
from testopeninference.conform.outcomes import CassetteResult, Outcome, outcome_finding
from testopeninference.conform.selection import parse_selection
from testopeninference.errors import ConformUsageError, GatewayRefusedError, GatewayUnreachableError, SpanSelectionError
from testopeninference.goldens import golden_span
from testopeninference.openinference_spec import validate_openinference
from testopeninference.kit import GatewayReply, OTLPCollector, prefix_model, send_cassette
from testopeninference.recorder.collector import InMemoryOTLPCollector
from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder.endpoints import endpoint_of
from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer, ReplayError
from testopeninference.recorder.layers import cassette_library
from testopeninference.status import BROKEN, golden_statuses

_SHOWN_BODY = 2000  # characters of a gateway's error body quoted


@dataclasses.dataclass(frozen=True)
class ConformOptions:
    """How each cassette is sent and scored (the ``conform`` options)."""

    level: Level
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    path_prefix: str = ""
    model_prefix: str = ""
    span_name: str | None = None
    timeout: float = 10.0  # seconds to wait for a cassette's span
    strict_spec: bool = False  # spec level: count the problems the reference golden has too
    request_timeout: float = 60.0  # seconds to wait for the gateway's reply


def chosen_cassettes(settings: Settings, expression: str = "") -> list[tuple[str, str]]:
    """(name, endpoint) of the cassettes the convention has a golden for, narrowed by a ``-k`` expression; a
    chosen cassette that cannot be read is its error, one that is not chosen is no concern."""
    wanted = parse_selection(expression)
    library = cassette_library(settings)
    chosen = []
    for status in golden_statuses(settings):
        if status.state == BROKEN and wanted(status.cassette, ""):  # chosen by name, its endpoint unknown
            endpoint_of(library.load(status.cassette))  # its own error, file and line: the run stops (exit 2)
        if status.state not in ("present", "stale"):
            continue
        endpoint = endpoint_of(library.load(status.cassette)).value
        if wanted(status.cassette, endpoint):
            chosen.append((status.cassette, endpoint))
    if not chosen:
        what = f" matching -k {expression!r}" if expression else ""
        raise ConformUsageError(f"no cassette with a golden of the {settings.convention} convention{what}; see testopeninference "
                                "list --coverage for the cassettes and goldens there are.")
    return chosen


class ConformRun:
    """The fake OpenAI server and the OTLP collector of one scoring run (use as a context manager)."""

    def __init__(self, settings: Settings, ignore_body_keys: Sequence[str] = (), *, openai_port: int = 0,
                 otlp_port: int = 0, grpc_port: int = 0) -> None:
        self.settings = replace(settings, record_mode=RecordMode.NONE)  # a gateway run never records goldens
        tolerated = list(dict.fromkeys([*settings.ignore_body_keys, *ignore_body_keys]))
        self.replayer = CassetteReplayer(cassette_library(settings), ignore_body_keys=tolerated,
                                         requests_kept=settings.requests_kept)
        limits = settings.connection_limits()
        self._fake = FakeOpenAIServer(self.replayer, port=openai_port, limits=limits)
        self._collector = InMemoryOTLPCollector(port=otlp_port, max_spans=settings.max_spans, limits=limits,
                                                grpc_port=grpc_port)
        self.collector = OTLPCollector(self._collector)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ConformRun:
        with contextlib.ExitStack() as stack:
            for server, option in ((self._fake, "--openai-port"), (self._collector, "--otlp-port or --grpc-port")):
                try:
                    stack.enter_context(server)
                except OSError as error:
                    raise ConformUsageError(f"cannot listen on 127.0.0.1 ({error.strerror or error}); choose "
                                            f"other ports ({option}).") from None
            self._stack = stack.pop_all()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stack.close()

    @property
    def openai_base_url(self) -> str:
        return f"{self._fake.base_url}/v1"

    def placeholders(self, port: int) -> dict[str, str]:
        """The values of ``--gateway-cmd``'s placeholders."""
        return {"openai_base_url": self.openai_base_url, "fake_base_url": self._fake.base_url,
                "otlp_endpoint": self.collector.endpoint,
                "otlp_grpc_endpoint": self.collector.grpc_endpoint, "port": str(port), "python": sys.executable}

    def score(self, gateway_url: str, cassettes: Sequence[tuple[str, str]], options: ConformOptions,
              check_gateway: Callable[[], None] = lambda: None,
              progress: Callable[[CassetteResult], None] = lambda result: None,
              output: GatewayOutput | None = None) -> list[CassetteResult]:
        """Each cassette's result, in order; ``check_gateway`` raises when the gateway died; ``output`` (a gateway
        conform started) is quoted in a gateway error's detail."""
        results = []
        for name, endpoint in cassettes:
            result = self.score_one(gateway_url, name, endpoint, options, check_gateway, output)
            progress(result)
            results.append(result)
        return results

    def score_one(self, gateway_url: str, name: str, endpoint: str, options: ConformOptions,
                  check_gateway: Callable[[], None] = lambda: None,
                  output: GatewayOutput | None = None) -> CassetteResult:
        started = time.monotonic()
        cassette = self.replayer.library.load(name)
        mark, played = self.replayer.refusal_count, self.replayer.play_counts[name]
        printed = output.mark() if output is not None else 0
        adapt = prefix_model(options.model_prefix) if options.model_prefix else None
        try:
            reply = send_cassette(gateway_url, cassette, headers=options.headers, path_prefix=options.path_prefix,
                                  adapt=adapt, timeout=options.request_timeout)
        except GatewayUnreachableError as error:
            check_gateway()  # a gateway that died is the run's failure, quoting its output
            if isinstance(error, GatewayRefusedError):
                raise  # nothing listens: a setup failure, not this cassette's score
            detail = str(error) + _quoted(_printed_since(output, printed))
            return _result(name, endpoint, Outcome.GATEWAY_ERROR, detail, "", started)
        refusals = self.replayer.errors_since(mark)
        if refusals:
            return _result(name, endpoint, Outcome.UPSTREAM_DRIFT, _refusal_detail(refusals), reply.trace_id, started)
        recorded = cassette.interactions[0].response.code
        if reply.status != recorded:
            unused = None if self.replayer.play_counts[name] != played else self.openai_base_url
            printed_lines = _printed_since(output, printed)
            detail = status_detail(reply, recorded, unused, quoting=bool(printed_lines)) + _quoted(printed_lines)
            return _result(name, endpoint, Outcome.GATEWAY_ERROR, detail, reply.trace_id, started)
        try:
            exported = self.collector.llm_span(reply.trace_id, name=options.span_name, timeout=options.timeout)
        except SpanSelectionError as error:
            return _result(name, endpoint, Outcome.NO_SPAN, str(error), reply.trace_id, started)
        golden = golden_span(self.settings, name)
        comparison = compare_spans(golden, exported.span, gateway=True)
        findings, shared = level_findings(options, comparison, exported.span, golden)
        failed = Outcome.INVALID if options.level is spec else Outcome.DIFFERS
        detail = "\n".join(f"note: {note}" for note in comparison.notes)
        return CassetteResult(name, endpoint, failed if findings else Outcome.MATCH, findings, (), detail,
                              reply.trace_id, time.monotonic() - started, shared)


def level_findings(options: ConformOptions, comparison: SpanComparison, span: Span,
                   golden: Span) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """The level's findings, and (spec level) the problems the reference golden has too: those are no finding
    unless ``strict_spec``, where they count, marked "(the reference has it too)"."""
    findings = options.level(comparison, span)
    if options.level is not spec:
        return tuple(findings), ()
    theirs = set(validate_openinference(golden))
    shared = tuple(found.line for found in findings if found.line in theirs)
    if not options.strict_spec:
        return tuple(found for found in findings if found.line not in theirs), shared
    marked = [dataclasses.replace(found, line=f"{found.line} (the reference has it too)") if found.line in theirs
              else found for found in findings]
    return tuple(marked), ()


def _result(name: str, endpoint: str, outcome: Outcome, detail: str, trace_id: str, started: float) -> CassetteResult:
    return CassetteResult(name, endpoint, outcome, (outcome_finding(outcome, detail),), (), detail, trace_id,
                          time.monotonic() - started)


def status_detail(reply: GatewayReply, recorded: int, unused_upstream: str | None, *, quoting: bool = False) -> str:
    """A reply of another status than the cassette's, quoted, with the likely cause: a 404 or 405 sent to a path
    the gateway does not serve, or an upstream (``unused_upstream``, when set) that received nothing for the
    cassette; ``quoting``: the gateway's output follows, and may say why first."""
    body = reply.body if len(reply.body) <= _SHOWN_BODY else reply.body[:_SHOWN_BODY] + "..."
    lines = [f"the gateway answered {reply.status}, the cassette recorded {recorded}; its body: {body}"]
    if reply.status in (404, 405):
        lines.append(f"  sent to {reply.url}: is --path-prefix the gateway's route (e.g. --path-prefix /openai)?")
    if unused_upstream is not None:
        first = "did it fail before calling it (its output below)? else, " if quoting else ""
        lines.append(f"  the fake OpenAI server received no request for this cassette: {first}is the gateway's "
                     f"upstream {unused_upstream}?")
    return "\n".join(lines)


def _printed_since(output: GatewayOutput | None, mark: int) -> list[str] | None:
    """What a gateway conform started printed since ``mark``: its traceback or log line usually says why it
    failed (None for a gateway conform did not start)."""
    return output.settled_since(mark) if output is not None else None


def _quoted(lines: list[str] | None) -> str:
    """The gateway's lines, to append to a gateway error's detail."""
    if lines is None:
        return ""
    if not lines:
        return "\n  the gateway printed nothing since this cassette was sent"
    return "\n" + textwrap.indent(quoted(lines, "the gateway's output since this cassette was sent"), "  ")


def _refusal_detail(refusals: Sequence[ReplayError]) -> str:
    """The fake server's refusals, quoted: what it refused, why, and the body keys to tolerate."""
    lines = []
    for refusal in refusals:
        lines.append(f"the fake upstream refused {refusal.describe()}")
        lines += [f"  {difference}" for difference in refusal.differences]
        if refusal.body_keys:
            keys = " ".join(f"--ignore-body-key {key}" for key in refusal.body_keys)
            lines.append(f"  the gateway changed the request; if the change is harmless, tolerate it: {keys}")
    return "\n".join(lines)

"""What a gateway test holds: the fake OpenAI upstream, the OTLP collector, and a way to send cassettes.

The pytest plugin hands these out as the ``fake_openai``,
``otlp_collector_session`` and ``otlp_collector`` fixtures; they work without
pytest too. Each cassette sent goes in a trace of its own (``send_cassette``
sends a fresh ``traceparent``), so a test selects its spans by trace id, and
spans outside every sent trace (health checks, start-up) are kept apart.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from pathlib import Path
from typing import Iterable, Mapping

import httpx

from testopeninference.recorder.cassette import Cassette, CassetteLibrary
from testopeninference.recorder.collector import CollectedSpan, InMemoryOTLPCollector
from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer, ReplayError
from testopeninference.recorder.matchers import DEFAULT_MATCH_ON, IncomingRequest, MatchOn
from testopeninference.recorder.request import ProxyReply, transmit
from testopeninference.errors import (ConfigurationError, GatewayRefusedError, GatewayUnreachableError,
                                      SpanTimeoutError)
from testopeninference.gateway_request import Adapt, GatewayRequest, content_of, prefix_model, request_of
from testopeninference.span_selection import (announce_pick, candidates, in_trace, pick_of, pick_one,
                                              unrelated_line)
from testopeninference.trace_context import TraceParent, new_traceparent, parse_traceparent

__all__ = ["FakeOpenAI", "GatewayReply", "GatewayRequest", "OTLPCollector", "ReplayError", "SentTraces",
           "prefix_model", "send_cassette"]


class FakeOpenAI:
    """The replay server as a gateway's upstream: ``base_url`` is what to configure as the OpenAI URL."""

    def __init__(
        self,
        cassettes_dir: Path,
        *more_dirs: Path,
        ignore_body_keys: Iterable[str] = (),
        match_on: MatchOn = DEFAULT_MATCH_ON,
    ) -> None:
        """``ignore_body_keys`` (``["stream", "tools.*.strict"]``: dotted paths, ``*`` for any key or list
        index) are left out of request matching on both sides, for harmless changes a gateway makes."""
        self.library = CassetteLibrary(cassettes_dir, *more_dirs)  # the user's, then e.g. the packaged library
        self.replayer = CassetteReplayer(self.library, match_on, ignore_body_keys=ignore_body_keys)
        self._server = FakeOpenAIServer(self.replayer)

    @property
    def ignore_body_keys(self) -> tuple[str, ...]:
        return self.replayer.ignore_body_keys

    def start(self) -> FakeOpenAI:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        """Root address (Azure clients use this as their endpoint)."""
        return self._server.base_url

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``<url>/v1``."""
        return f"{self._server.base_url}/v1"

    def requests(self, cassette: str | None = None) -> list[IncomingRequest]:
        """Requests received so far (all, or those attributed to one cassette: by the ``X-Cassette-Name``
        header or, without it, by a unique body match), headers included."""
        received = list(self.replayer.received)
        if cassette is None:
            return received
        return [r for r in received if r.cassette == cassette]

    def errors(self) -> list[ReplayError]:
        """Every request refused so far (the latest 1000), with the reason and the differing fields."""
        return self.replayer.errors()

    def cassette(self, name: str) -> Cassette:
        return self.library.load(name)


class SentTraces:
    """Trace ids this process sent (``send_cassette``) or asked about: every other span is unrelated. A trace
    whose reply was not the cassette's status keeps that reply, for the messages of a span not found."""

    def __init__(self, max_kept: int = 100_000) -> None:
        self._order: collections.deque[str] = collections.deque()
        self._ids: set[str] = set()
        self._replies: dict[str, UnexpectedReply] = {}
        self._max_kept = max_kept
        self._lock = threading.Lock()

    def add(self, trace_id: str) -> None:
        with self._lock:
            if trace_id in self._ids:
                return
            self._order.append(trace_id)
            self._ids.add(trace_id)
            if len(self._order) > self._max_kept:
                gone = self._order.popleft()
                self._ids.discard(gone)
                self._replies.pop(gone, None)

    def note_reply(self, trace_id: str, reply: UnexpectedReply) -> None:
        self.add(trace_id)
        with self._lock:
            if trace_id in self._ids:
                self._replies[trace_id] = reply

    def unexpected_reply(self, trace_id: str) -> UnexpectedReply | None:
        """The gateway's reply in this trace when it was not the status the cassette recorded."""
        with self._lock:
            return self._replies.get(trace_id)

    def __contains__(self, trace_id: object) -> bool:
        with self._lock:
            return trace_id in self._ids


@dataclasses.dataclass(frozen=True)
class UnexpectedReply:
    """A gateway's reply whose status is not the cassette's: why a trace may hold no LLM span."""

    status: int
    recorded: int
    method: str
    url: str

    @property
    def unrouted(self) -> bool:
        """404 or 405 where the cassette recorded another status: the gateway has no route for the request,
        so nothing went upstream and no LLM span will come."""
        return self.status in (404, 405)

    def describe(self) -> str:
        hint = "; is path_prefix= (--path-prefix) the gateway's route?" if self.unrouted else ""
        return (f"the gateway answered {self.status} to {self.method} {self.url} (the cassette recorded "
                f"{self.recorded}){hint}")


SENT_TRACES = SentTraces()


@dataclasses.dataclass
class OTLPCollector:
    """The collector as a gateway test sees it: endpoints, and spans selected by trace.

    ``sent`` holds the trace ids that count as a test's own (by default every trace ``send_cassette``
    sent in this process); spans of other traces are ``unrelated_spans()``, reported, never selected.
    """

    collector: InMemoryOTLPCollector
    sent: SentTraces = dataclasses.field(default_factory=lambda: SENT_TRACES)

    @property
    def endpoint(self) -> str:
        """Give this to the gateway as ``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP/HTTP)."""
        return self.collector.endpoint

    @property
    def grpc_endpoint(self) -> str:
        """For a gateway exporting OTLP/gRPC: ``OTEL_EXPORTER_OTLP_ENDPOINT`` with
        ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` (``http://127.0.0.1:PORT``)."""
        return self.collector.grpc_endpoint

    def spans(self, name: str | None = None, scope: str | None = None, *,
              trace_id: str | None = None) -> list[CollectedSpan]:
        return [item for item in self.collector.spans() if _wanted(item, name, scope, trace_id)]

    def trace(self, trace_id: str) -> list[CollectedSpan]:
        """Every span received so far in one trace, in arrival order."""
        return self.spans(trace_id=_checked_trace_id(trace_id))

    def unrelated_spans(self) -> list[CollectedSpan]:
        """Spans outside every trace sent (readiness probes, start-up, another process's requests)."""
        return [item for item in self.collector.spans() if item.span.trace_id.hex() not in self.sent]

    def wait_for_spans(
        self, count: int = 1, *, name: str | None = None, scope: str | None = None, trace_id: str | None = None,
        timeout: float = 10.0,
    ) -> list[CollectedSpan]:
        """At least ``count`` matching spans (of one trace, with ``trace_id``), or ``SpanTimeoutError``
        saying what did arrive."""
        if trace_id is not None:
            self.sent.add(_checked_trace_id(trace_id))
        deadline = time.monotonic() + timeout
        while True:
            found = self.spans(name, scope, trace_id=trace_id)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                arrived = ", ".join(f"{i.scope.name}:{i.span.name}" for i in self.collector.spans()) or "none"
                where = f", trace_id={trace_id!r}" if trace_id is not None else ""
                raise SpanTimeoutError(
                    f"expected {count} span(s) (name={name!r}, scope={scope!r}{where}) within {timeout:g} s, "
                    f"got {len(found)}; spans received: {arrived}; {unrelated_line(self.unrelated_spans())}. "
                    f"Is the gateway's OTLP endpoint {self.endpoint}?"
                )
            time.sleep(0.02)

    def llm_span(self, trace_id: str, *, name: str | None = None, timeout: float = 10.0) -> CollectedSpan:
        """THE LLM or embedding span of a trace (see ``span_selection``), or the one span named ``name``.

        Waits up to ``timeout`` s for a candidate; none, or several, is a ``SpanSelectionError`` that
        lists the spans of the trace and the unrelated ones. The pick is announced (``span_selection.on_pick``):
        the pytest plugin shows it in the test's report.
        """
        trace_id = _checked_trace_id(trace_id)
        self.sent.add(trace_id)
        reply = self.sent.unexpected_reply(trace_id)
        if reply is None or not reply.unrouted:  # an unrouted request never makes an LLM span: no wait
            self.collector.wait_for(lambda item: in_trace(item, trace_id) and bool(candidates([item], name)), timeout)
        trace_spans = self.trace(trace_id)
        picked = pick_one(trace_spans, trace_id, name, self.unrelated_spans(),
                          reply.describe() if reply is not None else "")
        announce_pick(pick_of(trace_spans, picked, trace_id, name))
        return picked

    def clear(self) -> None:
        self.collector.clear()


def _wanted(item: CollectedSpan, name: str | None, scope: str | None, trace_id: str | None) -> bool:
    return ((name is None or item.span.name == name) and (scope is None or item.scope.name == scope)
            and (trace_id is None or in_trace(item, trace_id)))


def _checked_trace_id(trace_id: str) -> str:
    text = str(trace_id).strip().lower()
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigurationError(f"trace id {trace_id!r} is not 32 hex digits; pass the .trace_id of "
                                 "send_cassette's reply.")
    return text


@dataclasses.dataclass(frozen=True)
class GatewayReply(ProxyReply):
    """The gateway's reply (``status``, whole ``body``) and the trace the request was sent in."""

    trace_id: str  # 32 hex digits: select the request's spans with it
    traceparent: str  # the header value sent
    url: str = ""  # where the request went (path prefix and query included)


def send_cassette(
    gateway_url: str,
    cassette: Cassette,
    *,
    headers: Mapping[str, str] | None = None,
    traceparent: TraceParent | str | None = None,
    path_prefix: str = "",
    adapt: Adapt | None = None,
    timeout: float = 30.0,
) -> GatewayReply:
    """Send a cassette's request to a gateway in a trace of its own and read the whole reply.

    The request carries ``X-Cassette-Name`` and a fresh ``traceparent`` (or ``traceparent``, or one in
    ``headers``); ``path_prefix`` goes before the cassette's path (``"/openai"`` for ``/openai/v1/...``);
    ``adapt`` may change the ``GatewayRequest`` (e.g. ``prefix_model("gw::")``). The fake server still
    answers with the cassette's recorded reply.
    """
    extra = dict(headers or {})
    caller = _caller_context(traceparent, extra)
    extra["traceparent"] = caller.header()
    request = request_of(cassette, path_prefix, extra)
    if adapt is not None:
        request = adapt(request)
    SENT_TRACES.add(caller.trace_id)
    url = f"{gateway_url.rstrip('/')}{request.path}" + (f"?{request.query}" if request.query else "")
    try:
        reply = _transmit_request(url, request, cassette, timeout)
    except httpx.TransportError as error:
        raise unreachable(error, f"cassette {cassette.name}: {request.method} {url}", gateway_url, timeout) from None
    recorded = cassette.interactions[0].response.code
    if reply.status != recorded:
        SENT_TRACES.note_reply(caller.trace_id, UnexpectedReply(reply.status, recorded, request.method, url))
    return GatewayReply(reply.status, reply.body, caller.trace_id, caller.header(), url)


def unreachable(error: httpx.TransportError, what: str, gateway_url: str, timeout: float) -> GatewayUnreachableError:
    """The error for a request that got no reply, worded by its cause: a refused connection (nothing listens at
    the URL) is not blamed on a timeout."""
    cause = f"{type(error).__name__}: {error or 'no reply'}"
    if isinstance(error, httpx.ConnectError):
        refused = "was refused" if "refused" in str(error).lower() else "failed"
        return GatewayRefusedError(f"{what}: the connection to {gateway_url} {refused} ({cause}); is the gateway "
                                   f"running, and listening at {gateway_url}?")
    if isinstance(error, httpx.TimeoutException):
        return GatewayUnreachableError(f"{what}: no reply within {timeout:g} s ({cause}); is the gateway at "
                                       f"{gateway_url} stuck, or does it need longer than {timeout:g} s?")
    return GatewayUnreachableError(f"{what} failed ({cause}); did the gateway at {gateway_url} close the "
                                   "connection before its reply ended?")


def _transmit_request(url: str, request: GatewayRequest, cassette: Cassette, timeout: float) -> ProxyReply:
    """One request, multipart with the cassette's files or JSON, the whole reply read."""
    with httpx.Client() as client:
        if request.multipart:
            files = {key: (path.name, path.read_bytes()) for key, path in cassette.form_files().items()}
            return transmit(client, request.method, url, request.headers, timeout, data=request.form, files=files)
        sent_headers = {"Content-Type": "application/json", **request.headers}
        return transmit(client, request.method, url, sent_headers, timeout, content=content_of(request, cassette))


def _caller_context(traceparent: TraceParent | str | None, headers: dict[str, str]) -> TraceParent:
    """The trace the request goes in: the one given, one in ``headers``, else a fresh one."""
    in_headers = [key for key in headers if key.lower() == "traceparent"]
    given = traceparent if traceparent is not None else next((headers[key] for key in in_headers), None)
    for key in in_headers:
        del headers[key]
    if given is None:
        return new_traceparent()
    if isinstance(given, TraceParent):
        return given
    parsed = parse_traceparent(given)
    if parsed is None:
        raise ConfigurationError(f"traceparent {given!r} is not a valid W3C traceparent "
                                 "(00-<32 hex>-<16 hex>-<2 hex>); pass new_traceparent() or leave it out.")
    return parsed

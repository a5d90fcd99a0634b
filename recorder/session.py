"""``SpanRecorder``: one fake server, one collector and one proxy for a whole session.

Starting the proxy costs about a second of imports, so it is started once and
reused for every cassette. Each request carries its own trace id and its span
is picked by that id and the convention's instrumentation scope, so requests
in flight together never get each other's span: ``record_many`` keeps several
in flight (``Settings.record_concurrency``) so the recorder and the proxy work
on both cores at once, and each golden's bytes stay those of a serial run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterable, Iterator

import httpx
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder import request as proxy_request
from testopeninference.recorder.backends import ProxyBackend, create_backend, tail
from testopeninference.recorder.backends.environment import recording_environment
from testopeninference.recorder.backends.early import EarlyProxy
from testopeninference.recorder.cassette import Cassette, CassetteLibrary, RecordedRequest
from testopeninference.recorder.collector import CollectedLogRecord, CollectedSpan, InMemoryOTLPCollector
from testopeninference.recorder.config import Settings
from testopeninference.recorder.conventions import get_convention
from testopeninference.recorder.endpoints import Endpoint, endpoint_of, endpoint_of_path
from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer, ReplayError
from testopeninference.recorder.live import LiveRecorder
from testopeninference.recorder.provider_upstreams import provider_upstream
from testopeninference.recorder.record_result import RecordResult
from testopeninference.recorder.atomic import Prepared, discard, prepare, write_atomic_group
from testopeninference.recorder.locks import directory_lock, golden_lock
from testopeninference.recorder.manifest import Manifest, Provenance, file_sha256
from testopeninference.recorder.span_file import normalise, normalise_logs, to_json
from testopeninference.recorder.resources import refuse_packaged
from testopeninference.errors import (
    NotCoveredError,
    ProxyError,
    RecordingError,
    SpanTimeoutError,
    TestOpenInferenceError,
)

_Sender = Callable[[httpx.Client, str, int], proxy_request.ProxyReply]  # (client, proxy URL, trace id)


@dataclasses.dataclass(frozen=True)
class Golden:
    span: Span
    logs: LogsData | None  # the span's log records, for conventions that emit events


class SpanRecorder:
    """Records golden spans; use as a context manager or call ``start``/``stop``."""

    def __init__(self, settings: Settings, backend: ProxyBackend | None = None,
                 progress: Callable[[str], None] | None = None, early: EarlyProxy | None = None) -> None:
        """``progress`` gets one-line notes of slow one-time work (making the proxy's virtualenv); ``early`` is a
        proxy already importing (``backends/early.py``): its backend is used, its sockets served on."""
        self.settings = settings
        self._progress = progress
        self.convention = get_convention(settings.convention)
        self.library = CassetteLibrary(*settings.cassette_dirs)
        self.live = LiveRecorder(settings.upstream, self.library) if settings.upstream.enabled else None
        self.replayer = CassetteReplayer(self.library, on_missing=self.live.record if self.live else None)
        self._backend = early.backend if early is not None else backend
        self._early = early
        self._stack = contextlib.ExitStack()
        self._fake: FakeOpenAIServer | None = None
        self._collector: InMemoryOTLPCollector | None = None
        self._proxy_url: str | None = None
        self._client: httpx.Client | None = None
        self._proxy_lock = threading.Lock()  # one (re)start of the proxy at a time, among concurrent captures
        self._starting: Future[SpanRecorder] | None = None
        self._versions: tuple[ProxyBackend, dict[tuple[str, ...], dict[str, str]]] | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> SpanRecorder:
        with contextlib.ExitStack() as stack:
            if self._early is not None:
                stack.callback(self._early.close)  # last: once the servers stopped serving on its sockets
            servers: list[FakeOpenAIServer | InMemoryOTLPCollector] = []
            stack.callback(_stop_side_by_side, servers)
            fake, collector = FakeOpenAIServer(self.replayer), InMemoryOTLPCollector()
            if self._early is not None:  # the addresses the proxy was started with
                fake.serve_on(self._early.fake_listener)
                collector.serve_on(self._early.collector_listener)
            self._fake = fake.start()
            servers.append(self._fake)
            self._collector = collector.start()
            servers.append(self._collector)
            self._client = stack.enter_context(httpx.Client())
            self._stack = stack.pop_all()
        try:
            self._start_proxy()
        except BaseException:
            self._stop_parts()
            raise
        return self

    def start_in_background(self) -> SpanRecorder:
        """Start on a thread, so the caller loads and checks cassettes while the proxy imports (about a
        second); the first recording waits for the start, and raises its error."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="recorder-start")
        self._starting = pool.submit(self.start)
        pool.shutdown(wait=False)
        return self

    def wait_started(self) -> None:
        """Wait for ``start_in_background`` (if it was used); its error is raised here."""
        if self._starting is not None:
            self._starting.result()

    @property
    def backend_name(self) -> str:
        """Which backend runs the proxy (``auto`` resolved)."""
        return self._backend.name if self._backend is not None else ""

    def _start_proxy(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early.backend.wait_ready(early.url)
            self._proxy_url = early.url
            return
        if self._backend is None:
            self._backend = create_backend(self.settings, self._progress)
        self._proxy_url = self._backend.start(self._proxy_env())

    def _proxy_env(self) -> dict[str, str]:
        assert self._fake is not None and self._collector is not None
        return recording_environment(self._fake.base_url, self._collector.endpoint)

    def stop(self) -> None:
        if self._starting is not None:
            with contextlib.suppress(BaseException):  # a failed start has cleaned up after itself
                self._starting.result()
        self._stop_parts()

    def _stop_parts(self) -> None:
        if self._backend is not None:
            self._backend.stop()
        self._proxy_url = None
        self._stack.close()

    def __enter__(self) -> SpanRecorder:
        """Start, unless ``start_in_background`` already did: ``with SpanRecorder(s).start_in_background()``."""
        return self if self._starting is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- recording -----------------------------------------------------------------------------

    def span_path(self, cassette: str) -> Path:
        return self.convention.span_path(self.settings.spans_dir, cassette)

    def record(self, cassette: str, *, force: bool = False) -> RecordResult:
        """Write the golden for ``cassette`` unless it exists (or ``force``), and note its provenance.

        The golden's lock is held only while writing, so processes recording side by side never wait for each
        other's proxy; a golden that another process wrote while this one recorded is left as it is
        (``recorded`` is False). Span, log records and manifest entry are written as one unit: all or none.
        """
        started = time.monotonic()
        path = self.span_path(cassette)
        self.check_covered(cassette)
        spans_dir = self.settings.spans_dir
        refuse_packaged(spans_dir)
        with self._unwritable_as_error(path):
            if path.exists() and not force:
                return RecordResult(cassette, path, False, time.monotonic() - started)
            golden = self.capture_golden(cassette)
            with golden_lock(spans_dir, f"{self.convention.name}.{cassette}"):
                if path.exists() and not force:  # written by another process while this one recorded
                    return RecordResult(cassette, path, False, time.monotonic() - started)
                self._write(cassette, path, golden)
        return RecordResult(cassette, path, True, time.monotonic() - started)

    def record_many(self, cassettes: Iterable[str], *, force: bool = False,
                    concurrency: int | None = None) -> Iterator[RecordResult]:
        """``record`` each cassette, ``concurrency`` at a time (``Settings.record_concurrency``), in order of completion.

        The first error stops the rest: requests not yet sent are cancelled, those in flight finish, and it
        is raised.
        """
        names = list(cassettes)
        workers = max(1, min(concurrency or self.settings.record_concurrency, len(names) or 1))
        pool = ThreadPoolExecutor(workers, thread_name_prefix="record")
        pending: set[Future[RecordResult]] = {pool.submit(self.record, name, force=force) for name in names}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)  # each line as it finishes
                for future in done:
                    yield future.result()  # the first error is raised here
        finally:  # an error, Ctrl-C or a caller that stops early: nothing more is sent
            pool.shutdown(wait=True, cancel_futures=True)

    def _packages(self, endpoint: Endpoint) -> dict[str, str]:
        """The versions that shaped the endpoint's goldens (its provider's packages), read once per proxy
        (package metadata takes milliseconds)."""
        assert self._backend is not None
        backend, names = self._backend, self.convention.packages_for(endpoint)
        if self._versions is None or self._versions[0] is not backend:
            self._versions = (backend, {})
        if names not in self._versions[1]:
            self._versions[1][names] = backend.package_versions(names)
        return dict(self._versions[1][names])

    def _write(self, cassette: str, path: Path, golden: Golden) -> None:
        """Golden, log records and manifest entry, written together; only the manifest's part under its lock
        (the golden's own files are written and synced before it, so recordings side by side hardly wait)."""
        spans_dir = self.settings.spans_dir
        packages = self._packages(endpoint_of(self.library.load(cassette)))
        provenance = Provenance(cassette_sha256=file_sha256(self.library.path(cassette)), packages=packages)
        logs: dict[Path, str | Prepared] = {}
        span: Prepared | None = None
        try:
            if golden.logs is not None:
                logs_path = self.convention.logs_path(spans_dir, cassette)
                logs[logs_path] = prepare(logs_path, to_json(golden.logs))
            span = prepare(path, to_json(golden.span))
            with directory_lock(spans_dir):  # the manifest is shared: held only to commit
                manifest = Manifest(spans_dir)
                # the span last: an existing span file means a complete golden
                write_atomic_group({**logs, manifest.path: manifest.text_with(path, provenance), path: span})
        except BaseException:
            discard([*logs.values(), span])
            raise

    @contextlib.contextmanager
    def _unwritable_as_error(self, path: Path) -> Iterator[None]:
        """A spans directory that cannot be written (read-only, full) is one clear error."""
        try:
            yield
        except TestOpenInferenceError:
            raise  # SpanTimeoutError is a TimeoutError, hence an OSError, but says what it means already
        except OSError as error:
            raise RecordingError(
                f"cannot write the golden {path}: {error.strerror or error}. Nothing was written (no golden, no "
                f"manifest entry, no temporary file). Make "
                f"{self.settings.spans_dir} writable, or record elsewhere with --spans-dir / TESTOPENINFERENCE_SPANS_DIR."
            ) from None

    def check_covered(self, cassette: str) -> None:
        """Raise ``NotCoveredError`` when the convention claims no golden for this cassette."""
        why = self.convention.why_not_covered(cassette, endpoint_of(self.library.load(cassette)))
        if why:
            raise NotCoveredError(f"no {self.convention.name} golden for {cassette!r}: {why}.")

    def capture(self, cassette: str) -> Span:
        """Replay ``cassette`` through the proxy and return its normalised span."""
        return self.capture_golden(cassette).span

    def capture_golden(self, cassette: str) -> Golden:
        """Replay ``cassette`` through the proxy: its normalised span, and log records if the convention has them."""
        loaded = self.library.load(cassette)

        def send(client: httpx.Client, url: str, trace_id: int) -> proxy_request.ProxyReply:
            return proxy_request.send(client, url, loaded, trace_id, self.settings.span_timeout)

        return self._capture(cassette, send, _recorded_statuses(loaded), self.convention.scope_for(endpoint_of(loaded)))

    def record_new(self, cassette: str, path: str, body: str, description: str = "") -> RecordResult:
        """Record a new cassette from the live API through the proxy, then its golden from the replay."""
        if self.library.path(cassette).exists():
            raise RecordingError(f"cassette {self.library.path(cassette)} already exists; delete it to record it again.")
        if self.live is None:
            raise RecordingError(provider_upstream(path).missing_key_message(cassette))
        self.live.descriptions[cassette] = description
        request = RecordedRequest(method="POST", url=path, headers={}, body=body, form={})

        def send(client: httpx.Client, url: str, trace_id: int) -> proxy_request.ProxyReply:
            return proxy_request.send_request(client, url, cassette, request, trace_id, self.settings.span_timeout)

        scope = self.convention.scope_for(endpoint_of_path(path, cassette))
        self._capture(cassette, send, set(), scope)  # the fake server saves the live exchange as the cassette
        return self.record(cassette, force=True)  # the golden comes from the replay, like every later one

    def _capture(self, cassette: str, send: _Sender, expected_statuses: set[int], scope_name: str) -> Golden:
        self.wait_started()
        with self._proxy_lock:
            if self._proxy_url is None or self._backend is None or not self._backend.alive():
                self._restart_proxy()
        assert self._client is not None and self._collector is not None and self._proxy_url is not None
        trace_id = proxy_request.new_trace_id()
        try:
            reply = send(self._client, self._proxy_url, trace_id)
        except httpx.HTTPError as error:
            raise self._proxy_failure(cassette, f"request failed: {error!r}") from None
        replay_errors = self.replayer.take_errors(cassette)
        if replay_errors:
            raise RecordingError(f"cassette {cassette!r} could not be replayed: {self._replay_problem(replay_errors[0])}")
        if reply.status >= 500 and reply.status not in expected_statuses:
            raise self._proxy_failure(cassette, f"the proxy answered {reply.status}: {reply.body[:300]}")
        span, records = self._take_span(cassette, trace_id, scope_name)
        logs = None
        if self.convention.emits_events:
            scope = records[0].scope if records else InstrumentationScope(name=scope_name)
            logs = normalise_logs([item.log_record for item in records], scope)
        return Golden(normalise(span), logs)

    def _replay_problem(self, error: ReplayError) -> str:
        """The replayer's reason, with the recorder's own advice for drift: here the proxy changed the request."""
        if error.status != 409 or not error.differences or error.cassette is None:
            return error.reason
        return (
            f"request does not match cassette {self.library.path(error.cassette)}: {'; '.join(error.differences)}. "
            "Send the cassette's request unchanged, or delete the cassette to record it again."
        )

    def _take_span(self, cassette: str, trace_id: int, scope: str) -> tuple[Span, list[CollectedLogRecord]]:
        """This request's span from the convention's scope (for its provider), and the log records of it."""
        collector, backend = self._collector, self._backend
        if collector is None or backend is None:
            raise RecordingError(f"cassette {cassette!r}: the recorder is not started (call start() first)")
        found = collector.wait_for(belongs_to(trace_id, scope), self.settings.span_timeout)
        collector.remove(belongs_to(trace_id))
        records = [item for item in collector.log_records() if _in_trace(item, trace_id)]
        collector.remove_log_records(lambda item: _in_trace(item, trace_id))
        if not found:
            raise SpanTimeoutError(
                f"no span from instrumentation scope {scope!r} arrived for cassette {cassette!r} within "
                f"{self.settings.span_timeout:g} s (set TESTOPENINFERENCE_SPAN_TIMEOUT to wait longer). "
                f"Proxy output:\n{tail(backend.logs())}"
            )
        if len(found) > 1:
            raise RecordingError(
                f"cassette {cassette!r} produced {len(found)} spans from scope {scope!r}; expected exactly one."
            )
        span = found[0].span
        strays = [item for item in records if item.log_record.span_id != span.span_id]
        if strays:
            raise RecordingError(
                f"cassette {cassette!r}: {len(strays)} log record(s) in the request's trace do not point at its "
                f"span (event {strays[0].log_record.event_name!r}); the golden would not be self-consistent."
            )
        return span, [item for item in records if item.scope.name == scope]

    def _restart_proxy(self) -> None:
        if self._backend is not None:
            self._backend.stop()
        self._start_proxy()

    def _proxy_failure(self, cassette: str, what: str) -> ProxyError:
        if self._backend is not None and self._backend.exited_within(1.0):
            what = f"the proxy died ({what})"
        logs = self._backend.logs() if self._backend else ""
        return ProxyError(f"recording {cassette!r} failed: {what}. Nothing was written. Proxy output:\n{tail(logs)}")


def _stop_side_by_side(servers: list[FakeOpenAIServer | InMemoryOTLPCollector]) -> None:
    """Stop the servers together: each one's shutdown waits a tenth of a second (uvicorn's), not one after another."""
    stoppers = [threading.Thread(target=server.stop, name="server-stop") for server in servers]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()


def _in_trace(item: CollectedLogRecord, trace_id: int) -> bool:
    return item.log_record.trace_id == trace_id.to_bytes(16, "big")


def belongs_to(trace_id: int, scope_name: str | None = None) -> Callable[[CollectedSpan], bool]:
    """A collector filter: spans of this request's trace (and, if given, instrumentation scope)."""
    trace_bytes = trace_id.to_bytes(16, "big")

    def predicate(item: CollectedSpan) -> bool:
        return item.span.trace_id == trace_bytes and (scope_name is None or item.scope.name == scope_name)

    return predicate


def _recorded_statuses(cassette: Cassette) -> set[int]:
    return {interaction.response.code for interaction in cassette.interactions}


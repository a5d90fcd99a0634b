"""A fake OpenAI server that replays cassettes.

``CassetteReplayer.handle`` is the whole replay logic, a function from request
to response (unit tests need no sockets); ``FakeOpenAIServer`` is a thin
HTTP shell around it, bound to 127.0.0.1. The cassette is chosen by the
``X-Cassette-Name`` header; without one (gateways drop unknown headers), by a
unique body match: two or more equally good candidates are an error naming
them, never the first. ``GET /v1/models`` (and Azure's deployments listing) is
answered from the models the cassettes use. Event streams are written event by event, flushed after
each, as the real API streams them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import itertools
import json
import threading
from collections import Counter
from email.utils import formatdate
from typing import Any, Callable, Iterable, Optional

from testopeninference.recorder.cassette import Cassette, CassetteLibrary, validate_name
from testopeninference.recorder.loopback import BackgroundServer, ConnectionLimits, Scope, receive_body, send_error
from testopeninference.recorder.matchers import DEFAULT_MATCH_ON, IncomingRequest, MatchOn, MatchResult, RequestMatcher
from testopeninference.recorder.model_listing import listing_reply
from testopeninference.recorder.provider_upstreams import provider_upstream
from testopeninference.errors import (
    CassetteError, CassetteNotFoundError, ClientGoneError, InvalidCassetteError, RequestError, TestOpenInferenceError,
)

CASSETTE_HEADER = "X-Cassette-Name"

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_REQUESTS_KEPT = 100  # per cassette: trace propagation checks look at the latest ones
_ERRORS_KEPT = 1000

# Headers the server computes itself rather than replaying.
_NOT_REPLAYED = {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}


@dataclasses.dataclass(frozen=True)
class ReplayResponse:
    status: int
    headers: list[tuple[str, str]]
    chunks: tuple[bytes, ...]  # one per SSE event; a single chunk otherwise
    streamed: bool = False

    @functools.cached_property
    def payload(self) -> bytes:
        """The body sent whole (not streamed)."""
        return b"".join(self.chunks)

    @functools.cached_property
    def wire_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as sent, with the Content-Length of a whole body: encoded once, as a replay is reused."""
        headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in self.headers]
        if not self.streamed:
            headers.append((b"content-length", str(len(self.payload)).encode()))
        return headers

    @functools.cached_property
    def default_header_names(self) -> tuple[bytes, ...]:
        """``date`` and ``server`` where the reply has none of its own (the server adds them, once each)."""
        present = {key.lower() for key, _ in self.wire_headers}
        return tuple(name for name in (b"date", b"server") if name not in present)


def _default_headers(names: tuple[bytes, ...]) -> list[tuple[bytes, bytes]]:
    """uvicorn's own Date and Server values (it is told to add none itself, so a cassette's are never doubled)."""
    values: dict[bytes, Callable[[], bytes]] = {b"date": lambda: formatdate(usegmt=True).encode(), b"server": lambda: b"uvicorn"}
    return [(name, values[name]()) for name in names]


@dataclasses.dataclass(frozen=True)
class ReplayError:
    """A request the replayer refused: public through ``errors()``, so a gateway test can say why it failed.

    ``differences`` are the failing matchers' lines (for a request no cassette matched, against the closest
    one); ``body_keys`` the differing body keys in ``ignore_body_keys`` form (``tools.*.strict``).
    """

    cassette: str | None  # the cassette the request named (None: no header, and no unique body match)
    method: str
    path: str
    status: int
    reason: str
    differences: tuple[str, ...] = ()
    body_keys: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for a test report."""
        return f"{self.method} {self.path} -> {self.status} (cassette {self.cassette or 'none'}): {self.reason}"


OnMissing = Callable[[str, IncomingRequest], Optional[Cassette]]
"""Called with a cassette name no file holds and the request; returns the cassette to replay (e.g. recorded
from a live API, ``recorder.live``) or None for the usual "cassette not found" error."""


def split_events(body: str) -> list[str]:
    """Split an SSE body into events, each keeping its terminating blank line."""
    events, current = [], []
    for line in body.replace("\r\n", "\n").split("\n"):  # not splitlines(): JSON may hold U+2028 and friends
        if line.strip():
            current.append(line)
        elif current:
            events.append("\n".join(current) + "\n\n")
            current = []
    if current:
        events.append("\n".join(current) + "\n\n")
    return events


class CassetteReplayer:
    """Turns a request into the recorded response of the matching cassette.

    ``match_on`` (matcher names or callables) and ``ignore_body_keys`` are this replayer's own
    (``recorder.matchers.RequestMatcher``); ``on_missing`` answers for a named cassette no file holds.
    """

    def __init__(
        self,
        library: CassetteLibrary,
        match_on: MatchOn = DEFAULT_MATCH_ON,
        *,
        ignore_body_keys: Iterable[str] = (),
        on_missing: OnMissing | None = None,
        requests_kept: int = DEFAULT_REQUESTS_KEPT,
    ) -> None:
        self.library = library
        self.matcher = RequestMatcher(match_on, ignore_body_keys)
        # Ranks body matches without a header: the fewest tolerated differences wins.
        self._exact = RequestMatcher(match_on) if self.matcher.ignore_body_keys else self.matcher
        self.on_missing = on_missing
        self.requests_kept = requests_kept
        self.play_counts: Counter[str] = Counter()
        # The latest requests per cassette (headers included, for trace propagation checks), numbered
        # in arrival order: a long session keeps a bounded number, not every body it was ever sent.
        self._received: dict[str | None, collections.deque[tuple[int, IncomingRequest]]] = {}
        self._arrivals = itertools.count()
        self._received_count = 0  # every request received so far, kept or not: marks a request in flight
        self._errors: collections.deque[tuple[int, ReplayError]] = collections.deque(maxlen=_ERRORS_KEPT)
        self._refusals = 0  # every refusal so far, kept or not: marks where a test's refusals begin
        self._replays: dict[str, tuple[Cassette, ReplayResponse]] = {}  # per name, while the cassette is the same
        self._lock = threading.Lock()
        self._missing_lock = threading.Lock()  # one on_missing call at a time, even with concurrent requests

    @property
    def ignore_body_keys(self) -> tuple[str, ...]:
        return self.matcher.ignore_body_keys

    @property
    def received(self) -> list[IncomingRequest]:
        """The requests kept (the latest ``requests_kept`` per cassette), in arrival order, each with the
        cassette it was attributed to (``.cassette``)."""
        with self._lock:
            numbered = [item for kept in self._received.values() for item in kept]
        return [request for _, request in sorted(numbered, key=lambda item: item[0])]

    @property
    def received_count(self) -> int:
        """How many requests arrived so far, kept or not (compare two readings: did a request arrive?)."""
        with self._lock:
            return self._received_count

    def handle(self, request: IncomingRequest) -> ReplayResponse:
        name = request.headers.get(CASSETTE_HEADER.lower())
        attributed: str | None
        if name:
            response, attributed = self._handle_named(name, request), name
        else:
            response, attributed = self._handle_unnamed(request)
        self._keep(dataclasses.replace(request, cassette=attributed))
        return response

    def _handle_named(self, name: str, request: IncomingRequest) -> ReplayResponse:
        try:
            validate_name(name)
        except InvalidCassetteError as error:  # a client's mistake, not a broken cassette
            return self._error(name[:200], request, 400, "cassette_name_invalid", str(error))
        try:
            cassette = self.library.load(name)
        except CassetteNotFoundError as error:
            if self.on_missing is None:
                variable = provider_upstream(request.path).key_variable
                hint = f"Check the X-Cassette-Name header, or set {variable} to record it from the live API."
                return self._error(name, request, 500, "cassette_not_found", f"{error} {hint}")
            return self._fill_missing(name, request, error)
        except CassetteError as error:
            return self._error(name, request, 500, "cassette_invalid", str(error))
        except OSError as error:  # a name the file system refuses, such as one over 255 bytes
            message = f"cassette name {name[:80]!r}... cannot be a file name ({error.strerror}); use a shorter name"
            return self._error(name, request, 400, "cassette_name_invalid", message)
        try:
            result = self.matcher.compare(cassette.request, request)
        except RecursionError:
            return self._error(name, request, 400, "body_too_deep", _TOO_DEEP)
        except ValueError as error:  # the cassette's own request body is not JSON
            message = f"cassette {cassette.path} cannot be matched: its request body is not JSON ({error})"
            return self._error(name, request, 500, "cassette_invalid", message)
        if result:
            message = f"request does not match cassette {cassette.path}: {'; '.join(result.differences)}. "
            return self._error(name, request, 409, "cassette_mismatch", message + tolerance_hint(result), result)
        return self._replay(cassette)

    def _keep(self, request: IncomingRequest) -> None:
        with self._lock:
            if request.cassette not in self._received:
                self._received[request.cassette] = collections.deque(maxlen=self.requests_kept)
            self._received[request.cassette].append((next(self._arrivals), request))
            self._received_count += 1

    def _fill_missing(self, name: str, request: IncomingRequest, missing: CassetteNotFoundError) -> ReplayResponse:
        assert self.on_missing is not None
        try:
            with self._missing_lock:  # a second request for the same name replays what the first one got
                cassette = self.library.load(name) if self.library.path(name).exists() else None
                cassette = cassette or self.on_missing(name, request)
        except TestOpenInferenceError as error:
            return self._error(name, request, 502, "live_recording_failed", str(error))
        if cassette is None:
            return self._error(name, request, 500, "cassette_not_found", str(missing))
        return self._replay(cassette)

    def errors(self) -> list[ReplayError]:
        """Every refused request still kept (the latest 1000), oldest first; reading them removes nothing."""
        with self._lock:
            return [error for _, error in self._errors]

    @property
    def refusal_count(self) -> int:
        """How many requests were refused so far (a mark for ``errors_since``)."""
        with self._lock:
            return self._refusals

    def errors_since(self, mark: int) -> list[ReplayError]:
        """The refusals after ``refusal_count`` was ``mark`` (those still kept)."""
        with self._lock:
            return [error for number, error in self._errors if number >= mark]

    def take_errors(self, cassette: str) -> list[ReplayError]:
        """Remove and return the errors recorded for one cassette name (the recorder's check per golden)."""
        with self._lock:
            taken = [error for _, error in self._errors if error.cassette == cassette]
            kept = [item for item in self._errors if item[1].cassette != cassette]
            self._errors.clear()
            self._errors.extend(kept)
        return taken

    def _handle_unnamed(self, request: IncomingRequest) -> tuple[ReplayResponse, str | None]:
        """A unique body match, a model listing, or an error naming the candidates (or the closest cassette)."""
        try:
            compared = self._compare_all(request)
        except RecursionError:
            return self._error(None, request, 400, "body_too_deep", _TOO_DEEP), None
        matching = [(name, cassette) for name, cassette, result in compared if not result]
        best = self._best(matching, request)
        if len(best) == 1:
            name, cassette = best[0]
            return self._replay(cassette), name
        if len(best) > 1:
            names = ", ".join(name for name, _ in best)
            message = (
                f"no {CASSETTE_HEADER} header and {len(best)} cassettes match {request.method} {request.path} "
                f"equally: {names}. Send the header {CASSETTE_HEADER}: <cassette name> to choose one "
                "(the gateway must pass it upstream), or tolerate fewer body keys."
            )
            return self._error(None, request, 409, "cassette_ambiguous", message), None
        listing = listing_reply(self.library, request.method, request.path)
        if listing is not None:
            return ReplayResponse(listing.status, [("Content-Type", "application/json")], (listing.body,)), None
        return self._no_match(request, compared), None

    def _compare_all(self, request: IncomingRequest) -> list[tuple[str, Cassette, MatchResult]]:
        compared = []
        for name in self.library.names():
            try:
                cassette = self.library.load(name)
                compared.append((name, cassette, self.matcher.compare(cassette.request, request)))
            except (CassetteError, ValueError):  # a broken cassette spoils only requests for itself
                continue
        return compared

    def _best(self, matching: list[tuple[str, Cassette]], request: IncomingRequest) -> list[tuple[str, Cassette]]:
        """The matches with the fewest tolerated body differences (all of them when nothing is tolerated)."""
        if len(matching) < 2 or self._exact is self.matcher:
            return matching
        ranked = [(len(self._exact.compare(cassette.request, request).body_keys), name, cassette)
                  for name, cassette in matching]
        fewest = min(rank for rank, _, _ in ranked)
        return [(name, cassette) for rank, name, cassette in ranked if rank == fewest]

    def _no_match(self, request: IncomingRequest, compared: list[tuple[str, Cassette, MatchResult]]) -> ReplayResponse:
        message = (
            f"no {CASSETTE_HEADER} header and no cassette in {' or '.join(map(str, self.library.directories))} matches "
            f"{request.method} {request.path}."
        )
        closest = min(compared, key=lambda item: _distance(item[2]), default=None)
        result = MatchResult()
        if closest is not None:
            name, cassette, result = closest
            message += f" The closest is {name} ({cassette.path}): {'; '.join(result.differences)}. "
            message += tolerance_hint(result)
        message += f" Send the header {CASSETTE_HEADER}: <cassette name>."
        return self._error(None, request, 400, "cassette_header_missing", message, result)

    def _replay(self, cassette: Cassette) -> ReplayResponse:
        with self._lock:
            self.play_counts[cassette.name] += 1
        built = self._replays.get(cassette.name)
        if built is None or built[0] is not cassette:
            built = self._replays[cassette.name] = (cassette, self._build_replay(cassette))
        return built[1]

    @staticmethod
    def _build_replay(cassette: Cassette) -> ReplayResponse:
        response = cassette.interactions[0].response
        headers = []
        for key, values in response.headers.items():
            if key.lower() not in _NOT_REPLAYED:
                # One Date and one Server, even where a cassette recorded two.
                headers += [(key, value) for value in (values[:1] if key.lower() in _ONCE else values)]
        if response.is_event_stream:
            chunks = tuple(event.encode() for event in split_events(response.body))
            return ReplayResponse(response.code, headers, chunks, streamed=True)
        return ReplayResponse(response.code, headers, (response.body_bytes(),))

    def _error(
        self, cassette: str | None, request: IncomingRequest, status: int, code: str, message: str,
        result: MatchResult = MatchResult(),
    ) -> ReplayResponse:
        refused = ReplayError(cassette, request.method, request.path, status, message, result.differences,
                              result.body_keys)
        with self._lock:
            self._errors.append((self._refusals, refused))  # the oldest go past 1000: nobody reads them under `serve`
            self._refusals += 1
        content_type, body = openai_error_body(status, message, code)
        return ReplayResponse(status, [("Content-Type", content_type)], (body,))


def _distance(result: MatchResult) -> tuple[int, bool, int, int]:
    """How far a cassette is from a request: failing matchers other than the body's (method, path), then
    bodies that differ as wholes (no key in common to name), then differing body keys, then how much text it
    takes to say what differs (an added key reads shorter than a changed message)."""
    others = sum(not line.startswith("body: ") for line in result.differences)
    return others, result.whole_body, len(result.body_keys), sum(map(len, result.differences))


_TOO_DEEP = "the request's JSON body nests too deeply to compare"
_ONCE = {"date", "server"}


def tolerance_hint(result: MatchResult) -> str:
    """What to do about a request that differs from its cassette: the gateway changed it."""
    only_body = all(line.startswith("body: ") for line in result.differences)
    if result.body_keys and only_body:
        keys = result.body_keys
        options = " ".join(f"--ignore-body-key {key}" for key in keys)
        return (
            f"The gateway changed the request. If the change is harmless, tolerate it with "
            f"ignore_body_keys={json.dumps(list(keys))} (FakeOpenAI, or for the fake_openai fixture pytest "
            f"{options} or [tool.testopeninference] ignore-body-keys) or `testopeninference serve {options}`; "
            "otherwise make the gateway send the cassette's request unchanged."
        )
    return "The gateway changed the request: make it send the cassette's method, path and body unchanged."


# Codes of the refusals made before a request reaches the replayer.
_REFUSAL_CODES = {400: "bad_request", 408: "request_timeout", 413: "request_too_large", 503: "too_many_connections"}


def _refusal_body(status: int, message: str, request_type: str = "") -> tuple[str, bytes]:
    return openai_error_body(status, message)


def openai_error_body(status: int, message: str, code: str | None = None) -> tuple[str, bytes]:
    """An error shaped as the OpenAI API shapes its own, so SDKs and gateways show the message."""
    code = code or _REFUSAL_CODES.get(status, "server_error")
    body = {"error": {"message": message, "type": "testopeninference_error", "param": None, "code": code}}
    return "application/json", json.dumps(body).encode()


class _ReplayApp:
    """The ASGI shell around the replayer: read the body, replay, write the answer (events one by one)."""

    def __init__(self, replayer: CassetteReplayer, max_body_bytes: int) -> None:
        self.replayer = replayer
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        try:
            await receive_body(scope, receive, self.max_body_bytes, body.extend)
        except RequestError as error:
            return await send_error(send, _refusal_body, error.status, str(error), close=True)
        except ClientGoneError:
            return
        incoming = IncomingRequest(
            method=scope["method"],
            path=scope["path"],
            headers={key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]},
            body=bytes(body),
            query=scope["query_string"].decode("latin-1"),
        )
        if self.replayer.on_missing is None:
            response = self.replayer.handle(incoming)
        else:  # a live recording waits on a remote API: keep the loop serving others meanwhile
            response = await asyncio.to_thread(self.replayer.handle, incoming)
        await _write(send, response)


async def _write(send: Any, response: ReplayResponse) -> None:
    headers = response.wire_headers + _default_headers(response.default_header_names)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if not response.streamed:
        await send({"type": "http.response.body", "body": response.payload})
        return
    for chunk in response.chunks:  # chunked framing by h11, each event its own chunk, written at once
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class FakeOpenAIServer(BackgroundServer):
    """The replayer served over HTTP on loopback, in a background thread."""

    thread_name = "fake-openai"

    def __init__(
        self,
        replayer: CassetteReplayer,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: ConnectionLimits | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        super().__init__(host, port, limits)
        self.replayer = replayer
        self.max_body_bytes = max_body_bytes

    def _app(self) -> _ReplayApp:
        return _ReplayApp(self.replayer, self.max_body_bytes)

    def _error_body(self, status: int, message: str, request_type: str = "") -> tuple[str, bytes]:
        return openai_error_body(status, message)

    @property
    def base_url(self) -> str:
        """Address to give an OpenAI client (without ``/v1``)."""
        return self.url

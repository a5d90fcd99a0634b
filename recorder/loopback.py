"""What the fake OpenAI server and the collector share: an ASGI app served by uvicorn in the background.

Both bind 127.0.0.1 by default and a free port when asked for port 0, so no
traffic leaves the machine and parallel runs never collide. uvicorn does the HTTP
framing (Content-Length, chunked bodies, keep-alive) with llhttp through httptools,
or with h11 where httptools is missing; ``LoopbackProtocol`` adds what they leave
out: a JSON answer to framing they refuse, a deadline for a request's headers, and a connection limit answered with 503. The server runs on
its own event loop in a daemon thread and installs no signal handlers.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import json
import re
import socket
import threading
from time import monotonic
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Generator, TypeVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from testopeninference.errors import ClientGoneError, RequestError

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
except ImportError:  # h11 alone: slower, the same answers
    httptools = None  # type: ignore[assignment]
    HttpToolsProtocol = asyncio.Protocol  # type: ignore[assignment,misc]

Scope = dict[str, Any]
"""An ASGI scope or message (ASGI's dictionaries hold values of several types)."""
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Scope]], Callable[[Scope], Awaitable[None]]], Awaitable[None]]
ErrorBody = Callable[[int, str, str], tuple[str, bytes]]
"""``(status, message, request content type) -> (content type, body)``: how one server words a refusal."""

STOP_TIMEOUT = 5.0  # seconds stop() waits for the server thread
GRACE_SECONDS = 1.0  # how long a response in flight may go on once stop() is called
SWEEP_SECONDS = 0.25  # how often the read deadlines are checked, at most
MIN_SWEEP_SECONDS = 0.01


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """What one client may hold: bounded so a misbehaving one cannot exhaust memory or descriptors."""

    max_connections: int = 100
    header_timeout: float = 10.0  # seconds for a request's headers, from the connection or the previous answer
    body_timeout: float = 30.0  # seconds the body may go without sending a byte
    idle_timeout: float = 5.0  # seconds an idle keep-alive connection is kept
    max_header_bytes: int = 64 * 1024


def json_error_body(status: int, message: str, request_type: str = "") -> tuple[str, bytes]:
    """The default refusal: ``{"error": {"message": ..., "code": status}}``."""
    return "application/json", json.dumps({"error": {"message": message, "code": status}}).encode()


def raw_response(status: int, content_type: str, body: bytes) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for moments h11 cannot frame one."""
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def header(scope: Scope, name: bytes) -> str | None:
    """A request header from an ASGI scope (``name`` lower-case), or ``None``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def receive_body(scope: Scope, receive: Any, limit: int, sink: Callable[[bytes], None]) -> None:
    """Feed the body to ``sink`` piece by piece: 413 past ``limit`` bytes as sent.

    The parser has already checked the framing (Content-Length or chunked), and the server's sweeper
    answers a body that stalls (408), so only the size is left.
    """
    announced = header(scope, b"content-length")
    if announced is not None and announced.strip().isdigit() and int(announced) > limit:
        raise RequestError(413, f"the body ({announced} bytes) is over the {limit}-byte limit")
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise RequestError(413, f"the body is over the {limit}-byte limit")
        if chunk:
            sink(chunk)
        if not message.get("more_body", False):
            return


if TYPE_CHECKING:  # the mixin's super() calls reach asyncio.Protocol's methods through uvicorn's protocol classes
    _ProtocolBase = asyncio.Protocol
else:
    _ProtocolBase = object


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Send each write at once. asyncio sets TCP_NODELAY only on sockets whose ``proto`` is IPPROTO_TCP, and
    ``socket.create_server`` makes them with 0: Nagle stayed on, and an event stream's second write waited for
    the client's delayed ACK, 40 ms per streamed answer on a kept-alive connection."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Refusals(_ProtocolBase):
    """What both protocol classes add to uvicorn's: JSON refusals, read deadlines and a connection limit.

    No timer per request or connection: the protocol notes the time at the moments a deadline starts
    (connection made, answer complete, body bytes received) and the server's sweeper calls ``expire``
    a few times a second. The parser-specific parts are ``_head_in_progress`` (part of a request's head
    is in, not all of it), ``_awaiting_head`` (no request is being read or answered), ``_body_unread``
    and ``_request_content_type``.
    """

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    connections: set[Any]  # uvicorn's: every protocol of the server
    server_state: Any
    flow: Any
    cycle: Any
    app: Any

    def __init__(self, *args: Any, limits: ConnectionLimits, error_body: ErrorBody, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._error_body = error_body
        self._mark = 0.0  # monotonic time the running deadline started from
        self._idle_limit = limits.header_timeout  # seconds a connection may send nothing of its next request
        self._peer_done = False
        self._draining = False  # answered and half-closed: what the client still sends is dropped

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(transport)
        self._mark = monotonic()
        if len(self.connections) > self._limits.max_connections:
            self.app = functools.partial(_refuse_app, self._error_body, 503, self._over_limit_message())

    def _over_limit_message(self) -> str:
        return (
            f"the server already holds {self._limits.max_connections} connections (its limit); "
            "close idle connections or retry later"
        )

    def expire(self, now: float) -> None:
        """The sweeper's visit: 408 for headers or a body past their deadline, close a connection idle too long.

        Nothing at all of a next request within the header timeout (or the idle timeout after an answer):
        an idle connection, closed quietly.
        """
        if self._draining or self.transport.is_closing():
            return
        waited = now - self._mark
        if self._awaiting_head():
            if self._head_in_progress():
                if waited > self._limits.header_timeout:
                    self._refuse(408, f"the request headers did not arrive within {self._limits.header_timeout} s")
            elif waited > self._idle_limit:
                self.transport.close()
        elif waited > self._limits.body_timeout and self._body_unread() and not self.cycle.response_started:
            self._answer_then_close(408, f"the body sent nothing for {self._limits.body_timeout} s and is incomplete")

    def _answered(self) -> None:
        """An answer is complete: the wait for the next request's headers starts now."""
        self._mark = monotonic()
        self._idle_limit = min(self._limits.header_timeout, self._limits.idle_timeout)

    def _cycle_transport(self, method: str) -> _CycleTransport:
        return _CycleTransport(self.transport, self._close_after_answer, hold_head=method != "HEAD")

    def _close_after_answer(self) -> None:
        """Close, but first drop what the client still sends of a refused body for a moment (at most the body
        timeout, and a second), so that it reads our answer rather than a connection reset."""
        if not self._body_unread() or self._peer_done or self.transport.is_closing():
            self.transport.close()
            return
        self._draining = True
        self.transport.write_eof()
        self.transport.resume_reading()
        self.loop.call_later(min(GRACE_SECONDS, self._limits.body_timeout), self.transport.close)

    def _body_unread(self) -> bool:
        raise NotImplementedError

    def _refuse(self, status: int, message: str) -> None:
        if not self.transport.is_closing():
            content_type, body = self._error_body(status, message, self._request_content_type())
            self.transport.write(raw_response(status, content_type, body))
            self.transport.close()

    def _answer_then_close(self, status: int, message: str) -> None:
        """A refusal while the body is still coming: the answer, then a lingering close."""
        content_type, body = self._error_body(status, message, self._request_content_type())
        self.transport.write(raw_response(status, content_type, body))
        self._close_after_answer()

    def _refuse_early_end(self) -> None:
        self._refuse(400, "the request ended early: the client closed the connection before the end of its body")

    def _head_in_progress(self) -> bool:
        raise NotImplementedError

    def _awaiting_head(self) -> bool:
        raise NotImplementedError

    def _request_content_type(self) -> str:
        raise NotImplementedError


class _CycleTransport:
    """The transport as uvicorn's request cycle sees it.

    The head of an answer waits for its first body piece, so both go out in one write (one packet, one
    wake-up of the client) instead of two; a 1xx goes at once, and a HEAD answer, which has no body
    write, is not held. ``close()`` sends what is held, then goes through ``_close_after_answer``.
    """

    __slots__ = ("_transport", "_close", "_expect_head", "_held", "is_closing")

    def __init__(self, transport: asyncio.Transport, close: Callable[[], None], hold_head: bool) -> None:
        self._transport = transport
        self._close = close
        self._expect_head = hold_head
        self._held = b""
        self.is_closing = transport.is_closing

    def write(self, data: bytes) -> None:
        if self._expect_head and not data.startswith(b"HTTP/1.1 1"):
            self._expect_head = False
            self._held = data
            return
        if self._held:
            data, self._held = self._held + data, b""
        self._transport.write(data)

    def close(self) -> None:
        if self._held:
            self._transport.write(self._held)
            self._held = b""
        self._close()


def _content_type_of(headers: list[tuple[bytes, bytes]] | None) -> str:
    for name, value in headers or ():
        if name == b"content-type":
            return value.split(b";")[0].strip().decode("latin-1").lower()
    return ""


class _AlreadyRefused(Exception):
    """Raised from a parser callback to stop parsing a request it has already answered."""


class HttpToolsLoopbackProtocol(_Refusals, HttpToolsProtocol):
    """uvicorn's httptools (llhttp) protocol with the refusals above; the fast one, used when httptools is installed.

    llhttp has no bound on a request's head and accepts any ``Transfer-Encoding`` ending in chunked: both are
    checked here as h11 checks them (431, 501), so the answers do not depend on the parser.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False  # from a request's first byte to the end of its headers
        self._in_body = False  # from the end of its headers to the end of its body
        self._head_bytes = 0  # bytes received since the last request's headers ended
        self._waiting_cycle: tuple[Any, Any] | None = None  # a request's app, started once its small body is in

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        if not self._in_body:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError as error:
            self._refuse_framing(error.__context__ if isinstance(error.__context__, _AlreadyRefused) else error)
            return
        if self._in_body:  # the body deadline counts from its latest bytes
            self._mark = monotonic()
        elif self._in_head and self._head_bytes > self._limits.max_header_bytes:
            self._refuse(431, f"the request headers are over the {self._limits.max_header_bytes}-byte limit")

    def send_400_response(self, msg: str) -> None:
        self._refuse_framing(msg)

    def _refuse_framing(self, error: object) -> None:
        """Framing llhttp refuses (a bad Content-Length or chunk): a body saying why, then close."""
        if isinstance(error, _AlreadyRefused):
            return  # already answered
        where = "chunked body" if self._in_body else "request"
        self._refuse(400, f"malformed HTTP {where} ({error}); send a well-formed HTTP/1.1 request")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head, self._in_body, self._head_bytes = False, True, 0
        codings = [value for name, value in self.headers if name == b"transfer-encoding"]
        if codings and b",".join(codings).strip().lower() != b"chunked":
            self._refuse(501, f"unsupported Transfer-Encoding {b', '.join(codings).decode('latin-1')!r}; use chunked")
            raise _AlreadyRefused()
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        """A small body still on its way: start the app once it is all in (in one run, not a run, a wait for the
        body and a wake-up). A large body, or one the client sends after ``100 Continue``, starts it at once."""
        cycle.transport = self._cycle_transport(cycle.scope["method"])
        if cycle is self.cycle and self._in_body and not self.expect_100_continue and self._small_body():
            self._waiting_cycle = (cycle, app)
        else:
            run_eagerly(self.loop, cycle.run_asgi(app), self.tasks)

    def _small_body(self) -> bool:
        for name, value in self.headers:
            if name == b"content-length":
                return value.isdigit() and int(value) <= HIGH_WATER_LIMIT  # never pauses reading
        return False

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()
        if self._waiting_cycle is not None:
            (cycle, app), self._waiting_cycle = self._waiting_cycle, None
            run_eagerly(self.loop, cycle.run_asgi(app), self.tasks)

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio allows True (uvicorn's says None)
        """The client closed its side: refuse a request cut short, still answer a complete one."""
        self._peer_done = True
        if self._draining:
            return None
        if self._in_body or self._in_head:
            self._refuse_early_end()
            return None
        return self.cycle is not None and not self.cycle.response_complete

    def on_response_complete(self) -> None:
        """uvicorn's, without its keep-alive timer (the sweeper closes idle connections): count the answer,
        read again, start a pipelined request if one waits."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._answered()
        self.flow.resume_reading()
        if self.pipeline:
            self._start_asgi_task(*self.pipeline.pop())
        if self._peer_done:
            self.transport.close()

    def _head_in_progress(self) -> bool:
        return self._in_head

    def _body_unread(self) -> bool:
        return self._in_body

    def _awaiting_head(self) -> bool:
        """No request whose headers are in is being read or answered (a pipelined one would be)."""
        return not self._in_body and (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _request_content_type(self) -> str:
        return _content_type_of(self.headers)


def run_eagerly(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]]
) -> None:
    """Run ``coroutine`` at once up to its first wait; only one that waits becomes a task (kept in ``tasks``).

    An answer ready at once (a replay, an export) then costs no loop turn to start its task and none to
    end it, as with Python 3.12's eager tasks, on every supported version. It runs in its own context.
    """
    context = contextvars.copy_context()
    try:
        awaited = context.run(coroutine.send, None)
    except StopIteration:
        return
    task = context.run(loop.create_task, _rest_of(coroutine, awaited))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _rest_of(coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
    await _Resumed(coroutine, awaited)


class _Resumed:
    """A started coroutine as an awaitable: what it waits for goes up to the task, what the task sends comes back."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
        self.coroutine = coroutine
        self.awaited = awaited

    def __await__(self) -> Generator[Any, Any, None]:
        awaited, coroutine = self.awaited, self.coroutine
        step: Callable[[Any], Any]
        while True:
            try:
                sent = yield awaited
            except BaseException as error:  # a cancellation or an error the task throws in
                step, value = coroutine.throw, error
            else:
                step, value = coroutine.send, sent
            try:
                awaited = step(value)
            except StopIteration:
                return


class _Connection(h11.Connection):
    """h11's connection, remembering why it refused the peer (uvicorn drops the reason)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self):  # type: ignore[no-untyped-def]
        try:
            return super().next_event()
        except h11.RemoteProtocolError as error:
            self.last_error = error
            raise


_CONTENT_TYPE = re.compile(rb"(?im)^content-type:[ \t]*([^\r\n;]*)")


class H11LoopbackProtocol(_Refusals, H11Protocol):
    """uvicorn's h11 protocol with the refusals above: the fallback when httptools is not installed."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, limits=limits, **kwargs)
        self.conn = _Connection(h11.SERVER, limits.max_header_bytes)

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        super().data_received(data)
        if self.conn.their_state is h11.SEND_BODY:  # the body deadline counts from its latest bytes
            self._mark = monotonic()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle.transport is self.transport:
            self.cycle.transport = self._cycle_transport(self.scope["method"])

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio allows True (uvicorn's says None)
        """The client closed its side: refuse a request cut short, still answer a complete one."""
        self._peer_done = True
        if self._draining:
            return None
        if self.conn.their_state is h11.SEND_BODY or self._head_in_progress():
            self._refuse_early_end()
            return None
        return self.conn.their_state is h11.DONE and self.cycle is not None and not self.cycle.response_complete

    def on_response_complete(self) -> None:
        """uvicorn's, without its keep-alive timer (the sweeper closes idle connections)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._answered()
        self.flow.resume_reading()
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
            self.handle_events()
        if self._peer_done:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Framing h11 refuses (a bad Content-Length or chunk, oversized headers): a body saying why, then close."""
        error = self.conn.last_error if isinstance(self.conn, _Connection) else None
        status = error.error_status_hint if error is not None else 400
        where = "chunked body" if self.cycle is not None and not self.cycle.response_complete else "request"
        self._refuse(status, f"malformed HTTP {where} ({error or msg}); send a well-formed HTTP/1.1 request")

    def _head_in_progress(self) -> bool:
        return self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])

    def _body_unread(self) -> bool:
        return self.conn.their_state is h11.SEND_BODY

    def _awaiting_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _request_content_type(self) -> str:
        """The Content-Type the client sent, parsed or still raw in h11's buffer ("" when unknown)."""
        if self.cycle is not None and not self.cycle.response_complete:
            return _content_type_of(self.headers)
        found = _CONTENT_TYPE.search(self.conn.trailing_data[0])
        return found[1].strip().decode("latin-1").lower() if found else ""


LoopbackProtocol = HttpToolsLoopbackProtocol if httptools is not None else H11LoopbackProtocol
"""The protocol the servers run: llhttp's parser when httptools is installed (several times faster), else h11."""


async def _refuse_app(error_body: ErrorBody, status: int, message: str, scope: Scope, receive: Any, send: Any) -> None:
    await send_error(send, error_body, status, message, close=True, request_type=header(scope, b"content-type") or "")


async def send_error(
    send: Any, error_body: ErrorBody, status: int, message: str, close: bool = False, request_type: str = ""
) -> None:
    """One refusal through ASGI; ``close`` ends the connection after it."""
    content_type, body = error_body(status, message, request_type)
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_Server = TypeVar("_Server", bound="BackgroundServer")


class BackgroundServer:
    """``start()`` serves in a daemon thread, ``stop()`` shuts down; also a context manager.

    Subclasses give ``_app()`` (the ASGI app) and may override ``_error_body``.
    """

    thread_name = "http-server"
    protocol_class: type[_Refusals] = LoopbackProtocol  # set to H11LoopbackProtocol before start() to use h11

    def __init__(self, host: str = "127.0.0.1", port: int = 0, limits: ConnectionLimits | None = None) -> None:
        self._address = (host, port)
        self.limits = limits or ConnectionLimits()
        self._socket: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._starting: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def _app(self) -> ASGIApp:
        raise NotImplementedError

    def _error_body(self, status: int, message: str, request_type: str = "") -> tuple[str, bytes]:
        return json_error_body(status, message)

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server (or of one starting in the background)."""
        bound = self._socket or self._listener
        if bound is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = bound.getsockname()[:2]
        return f"http://{host}:{port}"

    def serve_on(self: _Server, listener: socket.socket) -> _Server:
        """Serve on ``listener``, bound and listening before this server was made, instead of binding in
        ``start()``: its address can be handed out first (to a proxy that starts early), and the kernel queues
        connections to it until the server starts."""
        self._listener = listener
        return self

    def start(self: _Server) -> _Server:
        """Bind (an OSError such as a taken port surfaces here), then serve in the background."""
        self._socket = self._listener or socket.create_server(self._address)
        self._listener = None
        server = uvicorn.Server(self._config())
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(server, started), name=self.thread_name, daemon=True)
        self._thread.start()
        started.wait(STOP_TIMEOUT)
        return self

    def start_in_background(self: _Server) -> _Server:
        """Bind now and return at once: ``start()`` runs in a thread (loading the server takes tens of ms of a
        caller that has better things to do), and connections wait in the kernel's queue until it serves."""
        if self._listener is None:
            self._listener = socket.create_server(self._address)
        self._starting = threading.Thread(target=self.start, name=f"{self.thread_name}-start", daemon=True)
        self._starting.start()
        return self

    def _config(self) -> uvicorn.Config:
        protocol = functools.partial(self.protocol_class, limits=self.limits, error_body=self._error_body)
        config = uvicorn.Config(
            self._app(),
            http=protocol,  # type: ignore[arg-type]
            interface="asgi3",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=self.limits.idle_timeout,  # type: ignore[arg-type]  # uvicorn annotates int, uses seconds
            timeout_graceful_shutdown=GRACE_SECONDS,  # type: ignore[arg-type]
            h11_max_incomplete_event_size=self.limits.max_header_bytes,
            ws="none",
        )
        config.load()
        return config

    def _run(self, server: uvicorn.Server, started: threading.Event) -> None:
        asyncio.run(self._serve(server, started))

    async def _serve(self, server: uvicorn.Server, started: threading.Event) -> None:
        """uvicorn's startup and shutdown without its main loop: stop() wakes us at once, not on a tick."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server.lifespan = server.config.lifespan_class(server.config)  # "off": a no-op
        try:
            await server.startup(sockets=[self._bound()])
        finally:
            started.set()
        sweeper = asyncio.ensure_future(_sweep(server.server_state.connections, self._sweep_interval()))
        await self._stopping.wait()
        sweeper.cancel()
        await server.shutdown(sockets=[self._bound()])
        for connection in list(server.server_state.connections):  # those cut off after the grace period
            connection.transport.close()
        await asyncio.sleep(0)

    def _bound(self) -> socket.socket:
        if self._socket is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._socket

    def _sweep_interval(self) -> float:
        """Often enough that a deadline is kept to within a quarter of the shortest one (or 0.25 s)."""
        shortest = min(self.limits.header_timeout, self.limits.body_timeout, self.limits.idle_timeout)
        return max(MIN_SWEEP_SECONDS, min(SWEEP_SECONDS, shortest / 4))

    def stop(self) -> None:
        """Stop accepting, let answers in flight finish (for up to a second), close every socket."""
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.join()
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(STOP_TIMEOUT + GRACE_SECONDS)
        if self._socket is not None:
            self._socket.close()
        self._thread = self._socket = self._loop = self._stopping = None

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _sweep(connections: set[Any], interval: float) -> None:
    """Apply every connection's read deadlines: one timer for the whole server instead of several per request."""
    while True:
        await asyncio.sleep(interval)
        now = monotonic()
        for connection in list(connections):
            connection.expire(now)

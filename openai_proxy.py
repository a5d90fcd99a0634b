"""An OpenAI-compatible proxy whose SDK calls are instrumented, so they emit golden spans.

Each request's JSON body becomes the keyword arguments of the matching
official OpenAI SDK call (async client; ``AsyncAzureOpenAI`` for the Azure
``/openai/deployments/{deployment}/...`` paths). The upstream is the fake
OpenAI server; ``X-Cassette-Name`` is forwarded to it. Spans are exported
over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``.

Other providers live beside this module (``PROVIDERS``: ``anthropic_proxy``,
``cohere_proxy``), each with its routes, SDK client and instrumentors; this one
process serves them all, and ``--convention`` installs every provider's
instrumentor of that convention (another provider's on its first request).

A caller's ``traceparent`` sets the trace of the instrumentation span (as a
local parent, so the span is exported exactly as for an untraced call): the
recorder uses it to pick the span of each request.

Run: ``python openai_proxy.py [--host 127.0.0.1] [--port 8080 | --fd N] [--lifeline HOST:PORT]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import importlib
import json
import os
import signal
import socket
import sys
import threading
import traceback
from types import ModuleType
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, NoReturn, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

if TYPE_CHECKING:  # OpenTelemetry is imported after the instrumentation is set up
    from contextvars import Token

    from opentelemetry.context import Context

_T = TypeVar("_T")
CASSETTE_HEADER = "X-Cassette-Name"
DEFAULT_API_VERSION = "2024-10-21"

@dataclasses.dataclass(frozen=True)
class Instrumentation:
    """How one convention instruments the SDK: exactly one instrumentor, and the settings of its mode."""

    instrumentor: str  # "module:Class"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # instrumentor constructor arguments
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # read by the instrumentation itself

    def load(self) -> Any:
        module, _, name = self.instrumentor.partition(":")
        return getattr(importlib.import_module(module), name)(**self.options)


_GENAI_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
INSTRUMENTATIONS = {
    "openinference": Instrumentation("openinference.instrumentation.openai:OpenAIInstrumentor"),
    "otel-genai": Instrumentation(
        "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor", env={_GENAI_CONTENT: "SPAN_ONLY"}
    ),
    "otel-genai-events": Instrumentation(
        "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor", env={_GENAI_CONTENT: "EVENT_ONLY"}
    ),
    "openllmetry": Instrumentation(
        "opentelemetry.instrumentation.openai:OpenAIInstrumentor", options={"use_attributes": True}
    ),
    "openllmetry-events": Instrumentation(
        "opentelemetry.instrumentation.openai:OpenAIInstrumentor", options={"use_attributes": False}
    ),
}
CONVENTIONS = tuple(INSTRUMENTATIONS)


@dataclasses.dataclass(frozen=True)
class ProxySettings:
    """Where the upstream is and how to reach it; read once from the environment."""

    base_url: str = "https://api.openai.com/v1"
    api_key: str = "unused"
    azure_endpoint: str = ""
    azure_api_key: str = "unused"
    api_version: str = DEFAULT_API_VERSION
    timeout: float = 60.0
    propagate: bool = False  # send a W3C traceparent upstream, as a tracing gateway would
    convention: str = "openinference"  # whose instrumentors the other providers install on first use

    @classmethod
    def from_env(cls) -> ProxySettings:
        env = os.environ
        base_url = env.get("OPENAI_BASE_URL", cls.base_url)
        return cls(
            base_url=base_url,
            api_key=env.get("OPENAI_API_KEY", cls.api_key),
            azure_endpoint=env.get("AZURE_OPENAI_ENDPOINT") or base_url.removesuffix("/v1"),
            azure_api_key=env.get("AZURE_OPENAI_API_KEY", cls.azure_api_key),
            api_version=env.get("OPENAI_API_VERSION", cls.api_version),
        )


# Path (after /v1 or /openai/deployments/{deployment}) -> SDK method, given a client.
ENDPOINTS: dict[str, Callable[[Any], Callable[..., Any]]] = {
    "/chat/completions": lambda c: c.chat.completions.create,
    "/completions": lambda c: c.completions.create,
    "/embeddings": lambda c: c.embeddings.create,
    "/images/generations": lambda c: c.images.generate,
    "/audio/transcriptions": lambda c: c.audio.transcriptions.create,
    "/audio/translations": lambda c: c.audio.translations.create,
    "/responses": lambda c: c.responses.create,
    "/audio/speech": lambda c: c.audio.speech.create,
}

def _dotted(kind: str) -> bool:
    return "." in kind


@dataclasses.dataclass(frozen=True)
class StreamShape:
    """How a provider's API writes a stream to its client, so the proxy answers as that API would: which
    events carry an ``event:`` line (their ``type``), and what ends the stream."""

    named: Callable[[str], bool] = _dotted  # OpenAI: only the dotted types (Responses API, speech)
    end: bytes = b"data: [DONE]\n\n"

    def encode(self, event: Any) -> bytes:
        kind = getattr(event, "type", None)
        prefix = f"event: {kind}\n" if isinstance(kind, str) and self.named(kind) else ""
        return f"{prefix}data: {_to_json(event)}\n\n".encode()


OPENAI_STREAM = StreamShape()

PROVIDERS = ("anthropic_proxy", "cohere_proxy")
"""The other providers' modules, beside this one: ``ROUTES`` (path -> SDK call), ``make_client``, ``add_route``
and ``INSTRUMENTORS`` per convention (``mount_provider`` puts them in the app)."""


def providers() -> list[ModuleType]:
    """The provider modules, imported from this module's own folder or package."""
    return [importlib.import_module(f"{__package__}.{name}" if __package__ else name) for name in PROVIDERS]


def instrument(convention: str) -> None:
    """Install the convention's one instrumentor, with explicit tracer and logger providers.

    Not auto-instrumentation: it loads every installed instrumentor under the entry-point name
    ``openai``, and several instrumentors wrap the same SDK methods and change each other's output.
    """
    from opentelemetry import _logs, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    setup = INSTRUMENTATIONS[convention]
    os.environ.update(setup.env)
    resource = Resource.create()  # service.name from OTEL_SERVICE_NAME
    tracer_provider, logger_provider = TracerProvider(resource=resource), LoggerProvider(resource=resource)
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none":
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if os.environ.get("OTEL_LOGS_EXPORTER", "otlp") != "none":
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    trace.set_tracer_provider(tracer_provider)
    _logs.set_logger_provider(logger_provider)
    setup.load().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)


def instrument_provider(provider: ModuleType, convention: str) -> None:
    """Install another provider's instrumentor of the convention, with the providers ``instrument`` set.

    Called on the provider's first request, before its SDK client is made: importing an SDK and its
    instrumentation takes about a second, paid only by sessions that use that provider.
    """
    from opentelemetry import _logs, trace

    if convention in provider.INSTRUMENTORS:
        instrumentor, options = provider.INSTRUMENTORS[convention]
        Instrumentation(instrumentor, options).load().instrument(
            tracer_provider=trace.get_tracer_provider(), logger_provider=_logs.get_logger_provider()
        )


def create_app(settings: ProxySettings) -> FastAPI:
    """The FastAPI app: ``/health`` and every endpoint, in its ``/v1`` and Azure forms, forwarded to the SDK."""
    import openai  # after instrument(), so the SDK is already wrapped when clients are made

    app = FastAPI(title="testopeninference OpenAI proxy")
    clients = SDKClients(settings, openai)

    async def forward(request: Request, endpoint: str, deployment: str | None = None) -> Response:
        call = ENDPOINTS[endpoint](clients.get(deployment, request.query_params.get("api-version")))
        return await _forward(openai, call, request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    for endpoint in ENDPOINTS:
        _route(app, f"/v1{endpoint}", forward, endpoint)
        _route(app, f"/openai/deployments/{{deployment}}{endpoint}", forward, endpoint)
    for provider in providers():
        mount_provider(app, provider, settings)
    return app


def mount_provider(app: FastAPI, provider: ModuleType, settings: ProxySettings) -> None:
    """A provider's routes; its SDK is instrumented and its client made on its first request, so a recording
    that never calls it pays nothing for it at start-up."""
    made: list[Any] = []  # [client]: one per app; the event loop's one thread makes it
    proxy = sys.modules[__name__]

    def client() -> Any:
        if not made:
            made.append(provider.make_client(proxy, settings))
        return made[0]

    for path, method in provider.ROUTES.items():
        provider.add_route(app, path, proxy, client, method)


class SDKClients:
    """SDK clients made lazily, one per (Azure deployment, API version); ``None`` is the plain OpenAI client."""

    def __init__(self, settings: ProxySettings, openai: Any) -> None:
        self._settings = settings
        self._openai = openai
        self._clients: dict[tuple[str, str], Any] = {}

    def get(self, deployment: str | None, api_version: str | None) -> Any:
        key = (deployment or "", api_version or "")
        if key not in self._clients:
            self._clients[key] = self._make(deployment, api_version)
        return self._clients[key]

    def _make(self, deployment: str | None, api_version: str | None) -> Any:
        settings, openai = self._settings, self._openai
        common: dict[str, Any] = dict(timeout=settings.timeout, max_retries=0)
        if settings.propagate:
            common["http_client"] = _propagating_http_client(openai)
        if deployment is None:
            return openai.AsyncOpenAI(base_url=settings.base_url, api_key=settings.api_key, **common)
        return openai.AsyncAzureOpenAI(
            azure_endpoint=settings.azure_endpoint,
            azure_deployment=deployment,
            api_key=settings.azure_api_key,
            api_version=api_version or settings.api_version,
            **common,
        )


async def _forward(openai: Any, call: Callable[..., Any], request: Request,
                   stream_shape: StreamShape = OPENAI_STREAM) -> Response:
    """Make the SDK call in the caller's trace; answer with its result, a stream (in ``stream_shape``), or the
    upstream's error.

    Spans are flushed before the answer (for a stream, before its last event), so a caller holding the
    response finds its span at the collector.
    """
    kwargs = await _arguments(request)
    extra_headers = {CASSETTE_HEADER: request.headers[CASSETTE_HEADER]} if CASSETTE_HEADER in request.headers else {}
    token = _attach_trace(request.headers)
    try:
        result = await call(**kwargs, extra_headers=extra_headers)
    except openai.APIError as error:
        await _flush_spans()
        return _error_response(openai, error)
    finally:
        _detach(token)
    if isinstance(result, openai.AsyncStream):
        return StreamingResponse(_sse(result, stream_shape), media_type="text/event-stream")
    await _flush_spans()
    if isinstance(getattr(result, "content", None), bytes):  # binary content (speech audio) as the upstream sent it
        return Response(content=result.content, media_type=result.response.headers.get("content-type"))
    return Response(content=_to_json(result), media_type="application/json")


def _error_response(openai: Any, error: Exception) -> Response:
    """An upstream error keeps its status and body; a failure to reach the upstream is a 502."""
    if isinstance(error, openai.APIStatusError):
        return Response(
            content=error.response.content,
            status_code=error.status_code,
            media_type=error.response.headers.get("content-type", "application/json"),
        )
    body = {"error": {"message": f"upstream call failed: {error}", "type": "proxy_error", "code": None}}
    return JSONResponse(body, status_code=502)


def _propagating_http_client(openai: Any) -> Any:
    """The SDK's default HTTP client, injecting the current trace context into each upstream request."""
    from opentelemetry import propagate

    async def inject(request: Any) -> None:
        propagate.inject(request.headers)

    return openai.DefaultAsyncHttpxClient(event_hooks={"request": [inject]})


def _route(app: FastAPI, path: str, forward: Callable[..., Any], endpoint: str) -> None:
    async def handler(request: Request) -> Any:
        return await forward(request, endpoint, request.path_params.get("deployment"))

    app.add_api_route(path, handler, methods=["POST"], name=path)


async def _arguments(request: Request) -> dict[str, Any]:
    """The SDK call's keyword arguments: the JSON body, or multipart fields and files."""
    if request.headers.get("content-type", "").startswith("multipart/"):
        form = await request.form()
        kwargs: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                kwargs[key] = (value.filename, await value.read(), value.content_type)
            else:
                kwargs[key] = value
        return kwargs
    body = await request.body()
    return json.loads(body) if body.strip() else {}


def _attach_trace(headers: Any) -> Token[Context] | None:
    """Adopt the caller's trace id so its span can be found, without marking the parent remote."""
    from opentelemetry import context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    remote = trace.get_current_span(TraceContextTextMapPropagator().extract(dict(headers))).get_span_context()
    if not remote.is_valid:
        return None
    local = trace.SpanContext(remote.trace_id, remote.span_id, is_remote=False, trace_flags=remote.trace_flags)
    return context.attach(trace.set_span_in_context(trace.NonRecordingSpan(local)))


def _detach(token: Token[Context] | None) -> None:
    if token is not None:
        from opentelemetry import context

        context.detach(token)


async def _sse(stream: Any, shape: StreamShape) -> AsyncIterator[bytes]:
    """The events as the provider writes them; the last one (with the end, if any) only once the span is
    exported, so a client that stops at the last event finds its span."""
    last = b""
    async for event in stream:
        if last:
            yield last
        last = shape.encode(event)
    await _flush_spans()  # the span ended with the stream
    if last or shape.end:
        yield last + shape.end


async def _flush_spans() -> None:
    """Export finished spans and log records before answering, so a client with the response finds them.

    Safe with requests in flight together: ``force_flush`` exports under the processor's export lock, so when
    it returns, every span that ended before the call (this request's) has been exported, whichever
    request's flush or the processor's own thread sent it.
    """
    from opentelemetry import _logs, trace

    for provider in (trace.get_tracer_provider(), _logs.get_logger_provider()):
        flush = getattr(provider, "force_flush", None)
        if flush is not None:
            await asyncio.to_thread(flush, 5000)


def _to_json(result: Any) -> str:
    if hasattr(result, "model_dump_json"):
        return str(result.model_dump_json(exclude_unset=True))
    if isinstance(result, str):  # e.g. audio with response_format=text
        return json.dumps(result)
    return json.dumps(result, default=str)


def _instrumented_app(convention: str, propagate: bool) -> FastAPI:
    instrument(convention)
    return create_app(dataclasses.replace(ProxySettings.from_env(), propagate=propagate, convention=convention))


def without_collections(start: Callable[[], _T]) -> _T:
    """Run ``start`` with the garbage collector off, then freeze what it made: imports allocate much and free
    little, and the collections they trigger cost a tenth of the proxy's start-up, which a recording waits for."""
    gc.disable()
    try:
        return start()
    finally:
        gc.freeze()  # what start-up made is never collected again: later collections skip it
        gc.enable()


def hold_lifeline(address: str) -> None:
    """Exit at once when the recorder that started us goes away (its lifeline socket closes).

    The recorder holds the other end (``recorder/backends/lifeline.py``); the kernel closes it however the
    recorder ends, even on SIGKILL, so the proxy never outlives it. No connection: exit now.
    """
    host, _, port = address.rpartition(":")
    try:
        line = socket.create_connection((host, int(port)), timeout=10)
    except (OSError, ValueError) as error:
        print(f"openai_proxy: cannot reach the recorder's lifeline {address} ({error}); exiting.", file=sys.stderr)
        os._exit(3)
    line.settimeout(None)

    def watch() -> None:
        try:
            while line.recv(64):
                pass
        except OSError:
            pass
        os._exit(0)  # not sys.exit: no clean-up may keep the port or the process alive

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


PRELOADED = ("fastapi", "uvicorn", "httpx", "openai", "anthropic", "cohere", "opentelemetry.sdk.trace",
             "opentelemetry.sdk._logs", "opentelemetry.sdk.resources",
             "opentelemetry.exporter.otlp.proto.http.trace_exporter",
             "opentelemetry.exporter.otlp.proto.http._log_exporter")
"""What every proxy imports, whatever its convention (a second of CPU): a fork server imports it once.
No instrumentation: each proxy installs its own, as when started alone."""

FORK_MESSAGE_BYTES = 1 << 20


def serve_forks(control_fd: int) -> NoReturn:
    """Fork server: import ``PRELOADED`` once, then fork one proxy per request on the control socket.

    Each request (``recorder/backends/fork_server.py``) carries the proxy's arguments and environment, and
    its listening socket and log file as descriptors; the reply carries the proxy's pid and a pidfd. The
    server has no thread (a fork copies only the forking one), and exits when the recorder closes the socket.
    """
    control = socket.socket(fileno=control_fd)
    without_collections(_preload)
    if threading.active_count() > 1:  # a fork would copy a lock another thread holds: refuse, and say why
        names = ", ".join(thread.name for thread in threading.enumerate())
        print(f"openai_proxy: the fork server cannot fork: importing {PRELOADED} started threads ({names}); "
              "set TESTOPENINFERENCE_PROXY_FORK=false to start each proxy alone.", file=sys.stderr, flush=True)
        os._exit(4)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps each proxy; the recorder watches its pidfd
    while True:
        data, fds, _, _ = socket.recv_fds(control, FORK_MESSAGE_BYTES, 3)
        if not data:
            os._exit(0)  # the recorder is gone
        pid = os.fork()
        if pid == 0:
            control.close()
            _become_proxy(data, fds)
        for fd in fds:
            os.close(fd)
        _reply(control, pid)


def _preload() -> None:
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a provider's SDK that is not installed: its proxy says so on its first request


def _reply(control: socket.socket, pid: int) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # it already exited, and was reaped
        socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [])
        return
    socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [pidfd])
    os.close(pidfd)


def _become_proxy(data: bytes, fds: list[int]) -> NoReturn:
    """In the forked child: a new session, the recorder's log file as output, exactly the environment the
    recorder gives a proxy, then ``main`` as if started alone (the listening socket is the ``{fd}``); its exit
    status goes to the recorder's status pipe, since the recorder cannot wait for a process it did not start."""
    code, status = 1, fds[2]
    try:
        request, (listener, log) = json.loads(data), fds[:2]
        os.setsid()
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        argv = [argument.replace("{fd}", str(listener)) for argument in request["argv"]]
        sys.argv = [sys.argv[0], *argv]  # as if started alone
        main(argv)
        code = 0
    except SystemExit as error:  # argparse's usage error, say; sys.exit() alone is a success
        code = 0 if error.code is None else error.code if isinstance(error.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(status, str(code).encode())
        os._exit(code)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Instrumented OpenAI proxy for golden spans.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    parser.add_argument("--fd", type=int, default=None, help="serve on an already-bound socket")
    parser.add_argument("--convention", default="openinference", choices=CONVENTIONS)
    parser.add_argument("--propagate", action="store_true", help="send the trace context (traceparent) upstream")
    parser.add_argument("--lifeline", metavar="HOST:PORT", help="exit when this connection closes (the recorder's)")
    parser.add_argument("--fork-server", type=int, metavar="FD", help="fork proxies on requests on this socket")
    args = parser.parse_args(argv)
    if args.fork_server is not None:
        serve_forks(args.fork_server)
    if args.lifeline:
        hold_lifeline(args.lifeline)
    import uvicorn

    app = without_collections(lambda: _instrumented_app(args.convention, args.propagate))
    if args.fd is None:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
        return
    # uvicorn's own --fd treats the socket as AF_UNIX, which leaves Nagle on: 40 ms per keep-alive reply.
    listener = socket.socket(fileno=args.fd)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[listener])


if __name__ == "__main__":
    main()

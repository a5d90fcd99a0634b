"""A small AI gateway, to test the kit against: it behaves like real gateways do.

- serves the OpenAI API under ``/openai/v1/...`` (chat completions, streaming
  included, completions, embeddings) and forwards each request to its upstream
  (``OPENAI_BASE_URL``) with the official ``openai`` SDK;
- names models its own way: ``gw::<model>`` is accepted and sent upstream as ``<model>``;
- drops headers it does not know (``X-Cassette-Name`` among them) unless run with
  ``--keep-headers``, and adds ``"stream": false`` where a request has no
  ``stream`` (``--no-stream-default`` turns that off);
- exports three spans per request over OTLP (``OTEL_EXPORTER_OTLP_ENDPOINT``;
  ``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``http/protobuf``, the default, or ``grpc``):
  a SERVER span for the HTTP request, child of the caller's ``traceparent``; an
  INTERNAL ``route`` span under it; and the OpenInference instrumentor's LLM span,
  also under the server span (a grandchild of the caller's span); an upstream error
  sets the server span's status in the gateway's own words (``upstream returned 400: ...``);
- sends the trace context upstream (W3C ``traceparent``);
- exports one span of its own trace on every ``GET /health``, as gateways' health checks do;
- asks its upstream for ``GET /v1/models`` at start-up (printing how many models it found), and serves
  ``GET /openai/v1/models`` and ``/openai/v1/models/{id}`` from the upstream;
- with ``--llm-span-name NAME``, names the LLM span its own way, as gateways do.

Run: ``python gateway.py [--port 8080] [--keep-headers] [--no-stream-default] [--no-propagate]
[--llm-span-name NAME]``; it binds 127.0.0.1 and exits when its parent process dies (Linux).
"""

# No "from __future__ import annotations": FastAPI reads the handlers' annotations (Request) at run time.

import argparse
import contextlib
import ctypes
import json
import os
import signal
import sys
from typing import Any, AsyncIterator

MODEL_PREFIX = "gw::"
ROUTES = {"chat/completions": "chat", "completions": "completions", "embeddings": "embeddings"}


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies, so a killed test run leaves no gateway behind."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before prctl took effect
            sys.exit(0)


def tracer_provider(llm_span_name: str | None = None) -> Any:
    """The OTel SDK exporting over OTLP/HTTP or OTLP/gRPC, as ``OTEL_EXPORTER_OTLP_PROTOCOL`` says."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        sys.exit(f"gateway: OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use http/protobuf or grpc.")
    provider = TracerProvider(resource=Resource.create({"service.name": "example-gateway"}))
    if llm_span_name:
        provider.add_span_processor(_renamer(llm_span_name))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _renamer(name: str) -> Any:
    """A processor naming the instrumentation's LLM spans ``name`` as they start (gateways name spans their way)."""
    from opentelemetry.sdk.trace import SpanProcessor

    class RenameLLMSpans(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            if span.instrumentation_scope and span.instrumentation_scope.name.startswith("openinference"):
                span.update_name(name)

    return RenameLLMSpans()


def create_app(provider: Any, keep_headers: bool, stream_default: bool, propagate_context: bool = True) -> Any:
    """The gateway's HTTP app, with its upstream client made once."""
    import openai
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from opentelemetry import propagate, trace

    tracer = provider.get_tracer("example.gateway")

    async def inject(request: Any) -> None:
        propagate.inject(request.headers)

    hooks = {"request": [inject]} if propagate_context else {}
    client = openai.AsyncOpenAI(
        base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        api_key=os.environ.get("OPENAI_API_KEY", "unused"), max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(event_hooks=hooks),
    )
    calls = {"chat": client.chat.completions.create, "completions": client.completions.create,
             "embeddings": client.embeddings.create}

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        try:  # real gateways list the upstream's models at start-up
            models = [model.id async for model in client.models.list()]
            print(f"gateway: upstream serves {len(models)} model(s)", flush=True)
        except openai.APIError as error:
            print(f"gateway: cannot list the upstream's models: {error}", flush=True)
        yield

    app = FastAPI(title="example gateway", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        with tracer.start_as_current_span("GET /health", context=trace.set_span_in_context(trace.INVALID_SPAN),
                                          kind=trace.SpanKind.SERVER):
            return {"status": "ok"}

    @app.get("/openai/v1/models")
    async def models() -> Any:
        listing = await client.models.list()
        return Response(json.dumps({"object": "list", "data": [m.model_dump() for m in listing.data]}),
                        media_type="application/json")

    @app.get("/openai/v1/models/{model:path}")
    async def model(model: str) -> Any:
        try:
            found = await client.models.retrieve(model.removeprefix(MODEL_PREFIX))
        except openai.APIStatusError as error:
            return Response(error.response.content, error.status_code, media_type="application/json")
        return Response(found.model_dump_json(), media_type="application/json")

    @app.post("/openai/v1/{route:path}")
    async def forward(route: str, request: Request) -> Any:
        if route not in ROUTES:
            return JSONResponse({"error": {"message": f"no route for /openai/v1/{route}", "type": "not_found"}}, 404)
        caller = propagate.extract(dict(request.headers))
        server = tracer.start_span(f"POST /openai/v1/{route}", context=caller, kind=trace.SpanKind.SERVER)
        inside = trace.set_span_in_context(server)
        try:
            body = json.loads(await request.body() or b"{}")
            with tracer.start_as_current_span("route", context=inside) as routing:
                model = str(body.get("model", ""))
                body["model"] = model.removeprefix(MODEL_PREFIX)
                routing.set_attribute("gateway.route", "openai")
                routing.set_attribute("gateway.requested_model", model)
                routing.set_attribute("gateway.model", body["model"])
            if stream_default and ROUTES[route] != "embeddings":
                body.setdefault("stream", False)
            headers = {k: v for k, v in request.headers.items() if keep_headers and k.lower() not in _NEVER_FORWARDED}
            token = _attach(inside)
            try:
                result = await calls[ROUTES[route]](**body, extra_headers=headers)
            finally:
                _detach(token)
        except openai.APIStatusError as error:
            server.set_attribute("http.response.status_code", error.status_code)
            # worded the gateway's way, as gateways do: not the SDK's "Error code: 400 - {...}"
            server.set_status(trace.Status(trace.StatusCode.ERROR,
                                           f"upstream returned {error.status_code}: {error.type or 'error'}"))
            server.end()
            return Response(error.response.content, error.status_code, media_type="application/json")
        except (openai.APIError, ValueError, TypeError) as error:
            server.end()
            return JSONResponse({"error": {"message": f"gateway: {error}", "type": "gateway_error"}}, 502)
        if isinstance(result, openai.AsyncStream):
            return StreamingResponse(_events(result, server), media_type="text/event-stream")
        server.set_attribute("http.response.status_code", 200)
        server.end()
        return Response(result.model_dump_json(exclude_unset=True), media_type="application/json")

    return app


# Headers of this hop, or set by the SDK itself: never forwarded, whatever --keep-headers says.
_NEVER_FORWARDED = frozenset({"host", "content-length", "connection", "accept-encoding", "transfer-encoding",
                          "traceparent", "tracestate", "user-agent", "authorization", "content-type", "accept"})


def _attach(context: Any) -> object:
    from opentelemetry import context as otel_context

    return otel_context.attach(context)


def _detach(token: object) -> None:
    from opentelemetry import context as otel_context

    otel_context.detach(token)


async def _events(stream: Any, server: Any) -> AsyncIterator[bytes]:
    """Re-send the upstream's events; the server span ends with the stream."""
    try:
        async for event in stream:
            yield f"data: {event.model_dump_json(exclude_unset=True)}\n\n".encode()
        yield b"data: [DONE]\n\n"
    finally:
        server.set_attribute("http.response.status_code", 200)
        server.end()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A small AI gateway that serves the OpenAI API under /openai/v1.")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    parser.add_argument("--keep-headers", action="store_true", help="pass unknown headers (X-Cassette-Name) upstream")
    parser.add_argument("--no-stream-default", action="store_true", help='do not add "stream": false to requests')
    parser.add_argument("--no-propagate", action="store_true", help="send no traceparent upstream (a broken gateway)")
    parser.add_argument("--llm-span-name", default=None, metavar="NAME", help="name the LLM span NAME")
    args = parser.parse_args(argv)
    die_with_parent()
    from openinference.instrumentation.openai import OpenAIInstrumentor
    import uvicorn

    provider = tracer_provider(args.llm_span_name)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    app = create_app(provider, args.keep_headers, not args.no_stream_default, not args.no_propagate)
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    finally:
        provider.shutdown()  # export what is left


if __name__ == "__main__":
    main()

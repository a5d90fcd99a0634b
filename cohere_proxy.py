"""Cohere beside the OpenAI proxy: Rerank v2 through the official SDK (``AsyncClientV2.rerank``).

Mounted by ``openai_proxy`` like every provider module (see ``anthropic_proxy``). Cohere's SDK is not
shaped like OpenAI's (``ApiError`` with a parsed ``body``, headers through ``request_options``), so the
call and its error reply are this module's; trace adoption and span flushing are the proxy's.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

BASE_URL_VARIABLE, API_KEY_VARIABLE = "CO_API_URL", "CO_API_KEY"  # the names the Cohere SDK reads itself

ROUTES: dict[str, Callable[[Any], Callable[..., Any]]] = {
    "/v2/rerank": lambda client: client.rerank,
}

INSTRUMENTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "openinference": ("openinference.instrumentation.cohere:CohereInstrumentor", {}),
    "openllmetry": ("opentelemetry.instrumentation.cohere:CohereInstrumentor", {"use_legacy_attributes": True}),
    "openllmetry-events": ("opentelemetry.instrumentation.cohere:CohereInstrumentor", {"use_legacy_attributes": False}),
}
"""Convention -> (instrumentor, constructor arguments); the OpenTelemetry GenAI family has no Cohere one."""


def make_client(proxy: ModuleType, settings: Any) -> Any:
    """The SDK's async client, instrumented first (called on the provider's first request)."""
    proxy.instrument_provider(sys.modules[__name__], settings.convention)
    import cohere  # after the instrumentor wrapped it
    import httpx

    hooks: dict[str, list[Callable[..., Any]]] = {"request": [_inject_trace]} if settings.propagate else {}
    return cohere.AsyncClientV2(
        base_url=os.environ.get(BASE_URL_VARIABLE, "https://api.cohere.com"),
        api_key=os.environ.get(API_KEY_VARIABLE, "unused"),
        timeout=settings.timeout,
        httpx_client=httpx.AsyncClient(timeout=settings.timeout, event_hooks=hooks),
    )


async def _inject_trace(request: Any) -> None:
    from opentelemetry import propagate

    propagate.inject(request.headers)


def add_route(app: FastAPI, path: str, proxy: ModuleType, client: Callable[[], Any],
           method: Callable[[Any], Callable[..., Any]]) -> None:
    async def handler(request: Request) -> Response:
        return await _forward(proxy, method(client()), request)

    app.add_api_route(path, handler, methods=["POST"], name=path)


async def _forward(proxy: ModuleType, call: Callable[..., Any], request: Request) -> Response:
    """The SDK call in the caller's trace; an upstream error keeps its status and body."""
    from cohere.core.api_error import ApiError

    kwargs = await proxy._arguments(request)
    name = request.headers.get(proxy.CASSETTE_HEADER)
    options = {"additional_headers": {proxy.CASSETTE_HEADER: name}} if name else None
    token = proxy._attach_trace(request.headers)
    try:
        result = await call(**kwargs, request_options=options)
    except ApiError as error:
        await proxy._flush_spans()
        body = error.body if isinstance(error.body, (dict, list)) else {"message": str(error.body)}
        return JSONResponse(body, status_code=error.status_code or 502)
    except Exception as error:  # the upstream could not be reached: the proxy's own 502, as for OpenAI
        await proxy._flush_spans()
        return JSONResponse({"message": f"upstream call failed: {error!r}"}, status_code=502)
    finally:
        proxy._detach(token)
    await proxy._flush_spans()
    return Response(content=proxy._to_json(result), media_type="application/json")

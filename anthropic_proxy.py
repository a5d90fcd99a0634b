"""Anthropic beside the OpenAI proxy: the Messages API and token counting, through the official SDK.

A provider module brings its routes (path -> SDK call on its client), its client
and, per convention, its instrumentor; ``openai_proxy`` mounts it in the one
proxy app (``PROVIDERS``) and installs its instrumentor next to OpenAI's. The
plumbing every provider shares (trace adoption, span flushing, error replies)
is ``openai_proxy``'s, handed in as ``proxy``: the Anthropic SDK has OpenAI's
shape (``APIStatusError``, ``AsyncStream``, ``extra_headers``), so its calls go
through the same ``_forward``, which writes streams in Anthropic's own shape
(``event: message_start`` ... ``event: message_stop``, no ``[DONE]``), as a
faithful gateway would.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

BASE_URL_VARIABLE, API_KEY_VARIABLE = "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"

ROUTES: dict[str, Callable[[Any], Callable[..., Any]]] = {
    "/v1/messages": lambda client: client.messages.create,
    "/v1/messages/count_tokens": lambda client: client.messages.count_tokens,
}

INSTRUMENTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "openinference": ("openinference.instrumentation.anthropic:AnthropicInstrumentor", {}),
    "openllmetry": ("opentelemetry.instrumentation.anthropic:AnthropicInstrumentor", {"use_attributes": True}),
    "openllmetry-events": ("opentelemetry.instrumentation.anthropic:AnthropicInstrumentor", {"use_attributes": False}),
}
"""Convention -> (instrumentor, constructor arguments); the OpenTelemetry GenAI family has no Anthropic one."""


def _every_event(kind: str) -> bool:
    return True


def make_client(proxy: ModuleType, settings: Any) -> Any:
    """The SDK's async client, instrumented first (called on the provider's first request)."""
    proxy.instrument_provider(sys.modules[__name__], settings.convention)
    import anthropic  # after the instrumentor wrapped it

    # The SDK's own tracing is off (one instrumentation per proxy, as for OpenAI); it propagates the trace
    # context upstream only when asked, as the OpenAI client does.
    telemetry = {"traces": {"enabled": False}, "propagation": bool(settings.propagate)}
    options: dict[str, Any] = {"timeout": settings.timeout, "max_retries": 0, "open_telemetry": telemetry}
    if settings.propagate:
        options["http_client"] = proxy._propagating_http_client(anthropic)
    return anthropic.AsyncAnthropic(
        base_url=os.environ.get(BASE_URL_VARIABLE, "https://api.anthropic.com"),
        api_key=os.environ.get(API_KEY_VARIABLE, "unused"),
        **options,
    )


def add_route(app: FastAPI, path: str, proxy: ModuleType, client: Callable[[], Any],
           method: Callable[[Any], Callable[..., Any]]) -> None:
    async def handler(request: Request) -> Response:
        call = method(client())
        import anthropic

        stream_shape = proxy.StreamShape(named=_every_event, end=b"")  # every event named; message_stop ends it
        response: Response = await proxy._forward(anthropic, call, request, stream_shape)
        return response

    app.add_api_route(path, handler, methods=["POST"], name=path)

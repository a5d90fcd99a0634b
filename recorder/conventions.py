"""Instrumentation conventions: which instrumentation the proxy installs and what its goldens hold.

A convention names the proxy's ``--convention`` (``openai_proxy.INSTRUMENTATIONS``
says how it instruments the SDK), the instrumentation scope whose span is the
golden (frameworks such as FastAPI emit spans of their own, so the golden is
picked by scope, never by position), the packages that shape its output, where
its goldens live, whether it emits log records (events), and which endpoints it
covers: where an instrumentation does not cover one, no golden is claimed.

Each provider (``Endpoint.provider``: openai, anthropic, cohere) has its own
instrumentation package, so a convention names one scope per provider; which
provider a cassette belongs to follows from its endpoint, so nothing here or in
the recorder branches on a provider's name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypedDict

from testopeninference.recorder.endpoints import Endpoint
from testopeninference.errors import ConfigurationError

OPENTELEMETRY_SDK = (
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-semantic-conventions",
    "opentelemetry-instrumentation",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-exporter-otlp-proto-common",
    "opentelemetry-proto",
    "protobuf",
)


@dataclasses.dataclass(frozen=True)
class Convention:
    name: str
    scope_name: str
    packages: tuple[str, ...]  # the pinned packages that shape its output (recorded in the manifest)
    endpoints: tuple[Endpoint, ...]  # the endpoints its instrumentation covers
    span_names: dict[Endpoint, str]  # expected span name per endpoint; "{model}" stands for the request's model
    spans_subdir: str = ""  # "" keeps goldens directly in spans/
    content: str = "attributes"  # where message content goes: "attributes" or "events" (log records)
    uncovered: dict[str, str] = dataclasses.field(default_factory=dict)  # cassette -> why it has no golden
    description: str = ""
    other_scopes: dict[str, str] = dataclasses.field(default_factory=dict)  # provider -> its instrumentation scope
    other_packages: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # provider -> its packages
    why_not: dict[Endpoint, str] = dataclasses.field(default_factory=dict)  # endpoint not covered -> why

    def scope_for(self, endpoint: Endpoint) -> str:
        """The instrumentation scope whose span is the golden of a cassette of this endpoint."""
        return self.other_scopes.get(endpoint.provider, self.scope_name)

    def packages_for(self, endpoint: Endpoint) -> tuple[str, ...]:
        """The pinned packages that shape the golden of a cassette of this endpoint (its provider's)."""
        return self.other_packages.get(endpoint.provider, self.packages)

    @property
    def emits_events(self) -> bool:
        return self.content == "events"

    def span_path(self, spans_dir: Path, cassette: str) -> Path:
        return Path(spans_dir) / self.spans_subdir / f"{cassette}.json"

    def logs_path(self, spans_dir: Path, cassette: str) -> Path:
        """The golden's log records (``LogsData``), beside its span; only for conventions that emit events."""
        return Path(spans_dir) / self.spans_subdir / f"{cassette}.logs.json"

    def why_not_covered(self, cassette: str, endpoint: Endpoint) -> str | None:
        """Why this convention has no golden for the cassette, or None when it has one."""
        if endpoint not in self.endpoints:
            return self.why_not.get(endpoint) or f"{self.name} does not instrument the {endpoint.value} endpoint"
        return self.uncovered.get(cassette)


_NO_GENAI = (
    "PyPI has no opentelemetry-instrumentation-genai-{provider} (the OpenTelemetry project publishes GenAI "
    "instrumentation for OpenAI only; the name opentelemetry-instrumentation-anthropic is Traceloop's, used by openllmetry)"
)
_NO_SPEECH = "{name} does not instrument OpenAI text-to-speech (audio.speech.create)"

OPENINFERENCE = Convention(
    name="openinference",
    scope_name="openinference.instrumentation.openai",
    packages=(
        "openai",
        "openinference-instrumentation-openai",
        "openinference-instrumentation",
        "openinference-semantic-conventions",
        *OPENTELEMETRY_SDK,
        "pydantic",
        "httpx",
    ),
    endpoints=tuple(Endpoint),
    span_names={endpoint: endpoint.span_name for endpoint in Endpoint},
    description="OpenInference (openinference-instrumentation-openai, -anthropic, -cohere); the default",
    other_scopes={"anthropic": "openinference.instrumentation.anthropic", "cohere": "openinference.instrumentation.cohere"},
    other_packages={
        provider: (provider, f"openinference-instrumentation-{provider}", "openinference-instrumentation",
                   "openinference-semantic-conventions", *OPENTELEMETRY_SDK, "pydantic", "httpx")
        for provider in ("anthropic", "cohere")
    },
)

class _Family(TypedDict):
    """The fields that the attribute and event modes of one instrumentation share."""

    scope_name: str
    packages: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    span_names: dict[Endpoint, str]
    uncovered: dict[str, str]
    other_scopes: dict[str, str]
    other_packages: dict[str, tuple[str, ...]]
    why_not: dict[Endpoint, str]


_OTEL_GENAI_PACKAGES = (
    "openai",
    "opentelemetry-instrumentation-genai-openai",
    "opentelemetry-util-genai",
    *OPENTELEMETRY_SDK,
)
_OTEL_GENAI = _Family(
    scope_name="opentelemetry.instrumentation.genai.openai",
    packages=_OTEL_GENAI_PACKAGES,
    endpoints=(Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.RESPONSES),
    span_names={Endpoint.CHAT: "chat {model}", Endpoint.EMBEDDINGS: "embeddings {model}",
                Endpoint.RESPONSES: "chat {model}"},
    uncovered={},
    other_scopes={},
    other_packages={},
    why_not={
        Endpoint.MESSAGES: _NO_GENAI.format(provider="anthropic"),
        Endpoint.COUNT_TOKENS: _NO_GENAI.format(provider="anthropic"),
        Endpoint.RERANK: _NO_GENAI.format(provider="cohere"),
        Endpoint.SPEECH: _NO_SPEECH.format(name="opentelemetry-instrumentation-genai-openai"),
    },
)
OTEL_GENAI = Convention(
    name="otel-genai", spans_subdir="otel-genai", content="attributes", **_OTEL_GENAI,
    description="OpenTelemetry GenAI semantic conventions, message content as span attributes",
)
OTEL_GENAI_EVENTS = Convention(
    name="otel-genai-events", spans_subdir="otel-genai-events", content="events", **_OTEL_GENAI,
    description="OpenTelemetry GenAI semantic conventions, message content as events (log records)",
)

_OPENLLMETRY_STREAMED_COMPLETION = (
    "the instrumentation never ends the span of a streamed legacy completion from the async client"
)
_OPENLLMETRY = _Family(
    scope_name="opentelemetry.instrumentation.openai.v1",
    packages=(
        "openai",
        "opentelemetry-instrumentation-openai",
        "opentelemetry-semantic-conventions-ai",
        *OPENTELEMETRY_SDK,
    ),
    endpoints=(Endpoint.CHAT, Endpoint.COMPLETION, Endpoint.EMBEDDINGS, Endpoint.RESPONSES, Endpoint.MESSAGES,
               Endpoint.RERANK),
    span_names={Endpoint.CHAT: "openai.chat", Endpoint.COMPLETION: "openai.completion",
                Endpoint.EMBEDDINGS: "openai.embeddings", Endpoint.RESPONSES: "openai.response",
                Endpoint.MESSAGES: "anthropic.chat", Endpoint.RERANK: "cohere.rerank"},
    uncovered={
        "completion-streaming": _OPENLLMETRY_STREAMED_COMPLETION,
        "completion-streaming-usage": _OPENLLMETRY_STREAMED_COMPLETION,
    },
    other_scopes={"anthropic": "opentelemetry.instrumentation.anthropic", "cohere": "opentelemetry.instrumentation.cohere"},
    other_packages={
        provider: (provider, f"opentelemetry-instrumentation-{provider}", "opentelemetry-semantic-conventions-ai",
                   *OPENTELEMETRY_SDK)
        for provider in ("anthropic", "cohere")
    },
    why_not={
        Endpoint.COUNT_TOKENS: "Traceloop's opentelemetry-instrumentation-anthropic wraps no count_tokens method",
        Endpoint.SPEECH: _NO_SPEECH.format(name="Traceloop's opentelemetry-instrumentation-openai"),
    },
)
OPENLLMETRY = Convention(
    name="openllmetry", spans_subdir="openllmetry", content="attributes", **_OPENLLMETRY,
    description="OpenLLMetry (Traceloop's opentelemetry-instrumentation-openai), attribute mode",
)
_OPENLLMETRY_STREAMED_CHOICE = (
    "the instrumentation emits the gen_ai.choice event of a streamed chat outside the chat span "
    "(it points at the caller's span), so no self-consistent golden exists"
)
_OPENLLMETRY_ANTHROPIC_EVENTS = (
    "Traceloop's opentelemetry-instrumentation-anthropic emits its input events (gen_ai.user.message, ...) "
    "before it starts the span, so they point at the caller's span and no self-consistent golden exists"
)
OPENLLMETRY_EVENTS = Convention(
    name="openllmetry-events",
    spans_subdir="openllmetry-events",
    content="events",
    **_Family({**_OPENLLMETRY, "endpoints": tuple(e for e in _OPENLLMETRY["endpoints"] if e is not Endpoint.MESSAGES),
               "why_not": {**_OPENLLMETRY["why_not"], Endpoint.MESSAGES: _OPENLLMETRY_ANTHROPIC_EVENTS}, "uncovered": {
        **_OPENLLMETRY["uncovered"],
        "chat-streaming": _OPENLLMETRY_STREAMED_CHOICE,
        "chat-streaming-detailed-usage": _OPENLLMETRY_STREAMED_CHOICE,
        "chat-streaming-web-search": _OPENLLMETRY_STREAMED_CHOICE,
    }}),
    description="OpenLLMetry, event mode (use_attributes=False): content as events (log records)",
)

CONVENTIONS: dict[str, Convention] = {
    c.name: c for c in (OPENINFERENCE, OTEL_GENAI, OTEL_GENAI_EVENTS, OPENLLMETRY, OPENLLMETRY_EVENTS)
}


def get_convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        valid = ", ".join(CONVENTIONS)
        raise ConfigurationError(f"unknown convention {name!r}; use one of: {valid}.") from None

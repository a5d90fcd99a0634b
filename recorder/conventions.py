"""Instrumentation conventions: which instrumentation the proxy installs and what its goldens hold.

A convention names the proxy's ``--convention`` (``openai_proxy.INSTRUMENTATIONS``
says how it instruments the SDK), the instrumentation scope whose span is the
golden (frameworks such as FastAPI emit spans of their own, so the golden is
picked by scope, never by position), the packages that shape its output, where
its goldens live, whether it emits log records (events), and which endpoints it
covers: where an instrumentation does not cover one, no golden is claimed.
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
            return f"{self.name} does not instrument the {endpoint.value} endpoint"
        return self.uncovered.get(cassette)


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
    description="OpenInference (openinference-instrumentation-openai); the default",
)

class _Family(TypedDict):
    """The fields that the attribute and event modes of one instrumentation share."""

    scope_name: str
    packages: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    span_names: dict[Endpoint, str]
    uncovered: dict[str, str]


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
    endpoints=(Endpoint.CHAT, Endpoint.COMPLETION, Endpoint.EMBEDDINGS, Endpoint.RESPONSES),
    span_names={Endpoint.CHAT: "openai.chat", Endpoint.COMPLETION: "openai.completion",
                Endpoint.EMBEDDINGS: "openai.embeddings", Endpoint.RESPONSES: "openai.response"},
    uncovered={
        "completion-streaming": _OPENLLMETRY_STREAMED_COMPLETION,
        "completion-streaming-usage": _OPENLLMETRY_STREAMED_COMPLETION,
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
OPENLLMETRY_EVENTS = Convention(
    name="openllmetry-events",
    spans_subdir="openllmetry-events",
    content="events",
    **_Family({**_OPENLLMETRY, "uncovered": {
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

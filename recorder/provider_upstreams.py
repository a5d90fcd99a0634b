"""Each provider's live API, for recording its missing cassettes: where it is, its key and how the key is sent.

One row per provider in ``PROVIDER_UPSTREAMS``, chosen by the request's path (the endpoint's provider in
``recorder.endpoints``), so ``recorder.live`` has no provider branches: adding a provider adds a row here.
Azure OpenAI, told apart by its path prefix rather than its endpoint, stays ``recorder.live``'s own.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import httpx

from testopeninference.errors import InvalidCassetteError, RecordingError
from testopeninference.recorder import config
from testopeninference.recorder.config import Upstream
from testopeninference.recorder.endpoints import endpoint_of_path
from testopeninference.recorder.matchers import IncomingRequest

COMMON_FORWARDED_HEADERS = ("content-type", "accept")
"""The client's headers every provider gets; anything else the client sent (its own key too) stays behind."""


@dataclasses.dataclass(frozen=True)
class ProviderUpstream:
    """How a request reaches one provider's live API: base URL and key from ``Upstream``, auth headers."""

    name: str  # as in the error: "the live Anthropic API"
    key_variable: str  # named when the key is missing
    base_url_variable: str
    key: Callable[[Upstream], str]
    base_url: Callable[[Upstream], str]
    auth: Callable[[str], dict[str, str]]  # key -> the headers that carry it
    forwarded: tuple[str, ...] = ()  # the client's own headers the API reads (besides the common ones)
    defaults: dict[str, str] = dataclasses.field(default_factory=dict)  # sent when the client sent none
    path_prefix: str = ""  # the part of the request path the base URL already holds (OpenAI's "/v1")

    def missing_key_message(self, cassette: str) -> str:
        return (
            f"cassette {cassette!r} is missing; set {self.key_variable} to record it from {self.name} "
            f"({self.base_url_variable} for another server)."
        )

    def request(self, upstream: Upstream, incoming: IncomingRequest, cassette: str) -> httpx.Request:
        """The live request for ``incoming``; a ``RecordingError`` naming the key's variable when it is unset."""
        key = self.key(upstream)
        if not key:
            raise RecordingError(self.missing_key_message(cassette))
        wanted = COMMON_FORWARDED_HEADERS + self.forwarded
        headers = {**self.defaults, **{k: v for k, v in incoming.headers.items() if k in wanted}, **self.auth(key)}
        url = self.base_url(upstream).rstrip("/") + incoming.path.removeprefix(self.path_prefix)
        return httpx.Request(incoming.method, url, headers=headers, content=incoming.body)


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


PROVIDER_UPSTREAMS = {
    "openai": ProviderUpstream(
        "the live OpenAI API", config.OPENAI_API_KEY, config.OPENAI_BASE_URL,
        key=lambda up: up.openai_api_key, base_url=lambda up: up.openai_base_url, auth=_bearer,
        forwarded=("openai-beta",), path_prefix="/v1",
    ),
    "anthropic": ProviderUpstream(
        "the live Anthropic API", config.ANTHROPIC_API_KEY, config.ANTHROPIC_BASE_URL,
        key=lambda up: up.anthropic_api_key, base_url=lambda up: up.anthropic_base_url,
        auth=lambda key: {"x-api-key": key},
        forwarded=("anthropic-version", "anthropic-beta"), defaults={"anthropic-version": "2023-06-01"},
    ),
    "cohere": ProviderUpstream(
        "the live Cohere API", config.COHERE_API_KEY, config.COHERE_BASE_URL,
        key=lambda up: up.cohere_api_key, base_url=lambda up: up.cohere_base_url, auth=_bearer,
    ),
}


def provider_upstream(path: str) -> ProviderUpstream:
    """The upstream of the provider whose endpoint ``path`` names; OpenAI's for a path no endpoint knows."""
    try:
        provider = endpoint_of_path(path, path).provider
    except InvalidCassetteError:
        provider = "openai"
    return PROVIDER_UPSTREAMS[provider]

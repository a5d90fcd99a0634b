"""What a gateway test holds: the fake OpenAI upstream, the OTLP collector, and a way to send cassettes.

The pytest plugin hands these out as the ``fake_openai`` and
``otlp_collector`` fixtures; they work without pytest too.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Iterable

import httpx

from testopeninference.recorder.cassette import Cassette, CassetteLibrary
from testopeninference.recorder.collector import CollectedSpan, InMemoryOTLPCollector
from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer, ReplayError
from testopeninference.recorder.matchers import DEFAULT_MATCH_ON, IncomingRequest, MatchOn
from testopeninference.recorder.request import ProxyReply, send
from testopeninference.errors import SpanTimeoutError


class FakeOpenAI:
    """The replay server as a gateway's upstream: ``base_url`` is what to configure as the OpenAI URL."""

    def __init__(
        self,
        cassettes_dir: Path,
        *more_dirs: Path,
        ignore_body_keys: Iterable[str] = (),
        match_on: MatchOn = DEFAULT_MATCH_ON,
    ) -> None:
        """``ignore_body_keys`` (``["stream", "tools.*.strict"]``: dotted paths, ``*`` for any key or list
        index) are left out of request matching on both sides, for harmless changes a gateway makes."""
        self.library = CassetteLibrary(cassettes_dir, *more_dirs)  # the user's, then e.g. the packaged library
        self.replayer = CassetteReplayer(self.library, match_on, ignore_body_keys=ignore_body_keys)
        self._server = FakeOpenAIServer(self.replayer)

    @property
    def ignore_body_keys(self) -> tuple[str, ...]:
        return self.replayer.ignore_body_keys

    def start(self) -> FakeOpenAI:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        """Root address (Azure clients use this as their endpoint)."""
        return self._server.base_url

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``<url>/v1``."""
        return f"{self._server.base_url}/v1"

    def requests(self, cassette: str | None = None) -> list[IncomingRequest]:
        """Requests received so far (all, or those attributed to one cassette: by the ``X-Cassette-Name``
        header or, without it, by a unique body match), headers included."""
        received = list(self.replayer.received)
        if cassette is None:
            return received
        return [r for r in received if r.cassette == cassette]

    def errors(self) -> list[ReplayError]:
        """Every request refused so far (the latest 1000), with the reason and the differing fields."""
        return self.replayer.errors()

    def cassette(self, name: str) -> Cassette:
        return self.library.load(name)


@dataclasses.dataclass
class OTLPCollector:
    """The collector as a gateway test sees it: an endpoint, and spans to wait for."""

    collector: InMemoryOTLPCollector

    @property
    def endpoint(self) -> str:
        """Give this to the gateway as ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return self.collector.endpoint

    @property
    def grpc_endpoint(self) -> str:
        """For a gateway exporting OTLP/gRPC: ``OTEL_EXPORTER_OTLP_ENDPOINT`` with
        ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` (``http://127.0.0.1:PORT``)."""
        return self.collector.grpc_endpoint

    def spans(self, name: str | None = None, scope: str | None = None) -> list[CollectedSpan]:
        return [item for item in self.collector.spans() if _wanted(item, name, scope)]

    def wait_for_spans(
        self, count: int = 1, *, name: str | None = None, scope: str | None = None, timeout: float = 10.0
    ) -> list[CollectedSpan]:
        """At least ``count`` matching spans, or ``SpanTimeoutError`` saying what did arrive."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.spans(name, scope)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                arrived = ", ".join(f"{i.scope.name}:{i.span.name}" for i in self.collector.spans()) or "none"
                raise SpanTimeoutError(
                    f"expected {count} span(s) (name={name!r}, scope={scope!r}) within {timeout:g} s, "
                    f"got {len(found)}; spans received: {arrived}. Is the gateway's OTLP endpoint {self.endpoint}?"
                )
            time.sleep(0.02)

    def clear(self) -> None:
        self.collector.clear()


def _wanted(item: CollectedSpan, name: str | None, scope: str | None) -> bool:
    return (name is None or item.span.name == name) and (scope is None or item.scope.name == scope)


def send_cassette(
    gateway_url: str, cassette: Cassette, *, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> ProxyReply:
    """Send a cassette's request to a gateway, as the recorder sends it to the proxy; read the whole reply."""
    with httpx.Client() as client:
        return send(client, gateway_url, cassette, None, timeout, extra_headers=headers)

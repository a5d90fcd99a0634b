"""A cassette's request as a gateway test sends it, and the hook that adapts it to the gateway.

Gateways serve the OpenAI API under their own prefix (``/openai/v1/...``) or
name models their own way (``gw::gpt-4o-mini``). ``send_cassette`` builds a
``GatewayRequest`` from the cassette, lets an ``adapt`` callable change it,
then sends it; the upstream reply is still the cassette's, since the fake
server answers by the ``X-Cassette-Name`` header.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

from testopeninference.errors import ConfigurationError
from testopeninference.recorder.cassette import Cassette
from testopeninference.recorder.fake_openai import CASSETTE_HEADER


@dataclasses.dataclass(frozen=True)
class GatewayRequest:
    """What is sent: change it with ``dataclasses.replace`` in an ``adapt`` callable."""

    method: str
    path: str  # e.g. /v1/chat/completions, or /openai/v1/chat/completions with a path prefix
    headers: dict[str, str]
    body: Any  # the JSON body (a dict for every JSON cassette); None for a multipart request
    query: str = ""  # e.g. Azure's api-version=...
    form: dict[str, str] = dataclasses.field(default_factory=dict)  # multipart fields (files are sent as recorded)
    multipart: bool = False


Adapt = Callable[[GatewayRequest], GatewayRequest]


def request_of(cassette: Cassette, path_prefix: str, headers: dict[str, str]) -> GatewayRequest:
    """The cassette's request, under ``path_prefix``, with ``headers`` (the cassette name among them)."""
    recorded = cassette.request
    prefix = path_prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise ConfigurationError(f"path_prefix {path_prefix!r} must start with '/', e.g. '/openai'.")
    headers = {CASSETTE_HEADER: cassette.name, **headers}
    if recorded.is_multipart:
        return GatewayRequest(recorded.method, prefix + recorded.path, headers, None, recorded.query,
                              cassette.form_fields(), multipart=True)
    return GatewayRequest(recorded.method, prefix + recorded.path, headers, recorded.json(), recorded.query)


def content_of(request: GatewayRequest, cassette: Cassette) -> bytes:
    """The JSON body as sent: the cassette's own bytes while unchanged, else compact JSON in key order."""
    if request.body == cassette.request.json():
        return cassette.request.body.encode()
    return json.dumps(request.body, separators=(",", ":")).encode()


def prefix_model(prefix: str) -> Adapt:
    """An ``adapt`` callable naming the model the gateway's way: ``prefix_model("gw::")`` sends
    ``gw::gpt-4o-mini`` for ``gpt-4o-mini``."""

    def adapt(request: GatewayRequest) -> GatewayRequest:
        if not isinstance(request.body, dict) or "model" not in request.body:
            return request
        return dataclasses.replace(request, body={**request.body, "model": f"{prefix}{request.body['model']}"})

    return adapt

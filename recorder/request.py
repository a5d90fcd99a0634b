"""Sending a cassette's request to the proxy, the way a client of the gateway would.

The JSON body is POSTed to the cassette URL's path (and query, which carries
Azure's ``api-version``), with ``X-Cassette-Name`` and a ``traceparent`` whose
trace id lets the recorder find the span this request produced. Multipart
cassettes send their form fields and ``testdata/`` files. The whole response
is read: an event stream up to ``data: [DONE]``.
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

import httpx

from testopeninference.recorder.cassette import Cassette, RecordedRequest
from testopeninference.recorder.fake_openai import CASSETTE_HEADER

DONE_EVENT = "data: [DONE]"


@dataclasses.dataclass(frozen=True)
class ProxyReply:
    status: int
    body: str


def new_trace_id() -> int:
    return int.from_bytes(secrets.token_bytes(16), "big") or 1


def traceparent(trace_id: int) -> str:
    return f"00-{trace_id:032x}-{secrets.token_hex(8)}-01"


def send(
    client: httpx.Client,
    proxy_url: str,
    cassette: Cassette,
    trace_id: int | None,
    timeout: float,
    extra_headers: dict[str, str] | None = None,
) -> ProxyReply:
    """Send the cassette's request through the proxy (or a gateway) and read the whole response."""
    fields, files = (cassette.form_fields(), cassette.form_files()) if cassette.request.is_multipart else ({}, {})
    return send_request(client, proxy_url, cassette.name, cassette.request, trace_id, timeout, fields, files,
                        extra_headers=extra_headers)


def send_request(
    client: httpx.Client,
    proxy_url: str,
    name: str,
    request: RecordedRequest,
    trace_id: int | None,
    timeout: float,
    fields: dict[str, str] | None = None,
    files: dict[str, Path] | None = None,
    extra_headers: dict[str, str] | None = None,
) -> ProxyReply:
    """Send one request, named ``name`` for the fake server, and read the whole response."""
    url = f"{proxy_url}{request.path}" + (f"?{request.query}" if request.query else "")
    headers = {CASSETTE_HEADER: name, **(extra_headers or {})}
    if trace_id is not None:
        headers["traceparent"] = traceparent(trace_id)
    if request.is_multipart:
        uploads = {key: (path.name, path.read_bytes()) for key, path in (files or {}).items()}
        return transmit(client, request.method, url, headers, timeout, data=fields or {}, files=uploads)
    headers["Content-Type"] = "application/json"
    return transmit(client, request.method, url, headers, timeout, content=request.body.encode())


def transmit(client: httpx.Client, method: str, url: str, headers: dict[str, str], timeout: float,
             **build: object) -> ProxyReply:
    """Send a built request (``content=`` bytes, or ``data=`` and ``files=``) and read the whole response."""
    with client.stream(method, url, headers=headers, timeout=timeout, **build) as response:  # type: ignore[arg-type]
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return ProxyReply(response.status_code, _read_events(response))
        return ProxyReply(response.status_code, response.read().decode(errors="replace"))


def _read_events(response: httpx.Response) -> str:
    lines = []
    for line in response.iter_lines():
        lines.append(line)
        if line.strip() == DONE_EVENT:
            break
    return "\n".join(lines)

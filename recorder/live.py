"""Recording a missing cassette from a live API (OpenAI or compatible, Azure OpenAI, Anthropic, Cohere).

When a request names a cassette that does not exist and an upstream is
configured (``OPENAI_API_KEY``, the Azure settings, ``ANTHROPIC_API_KEY``,
``CO_API_KEY``), ``LiveRecorder.record`` (the replayer's ``on_missing``
callback: the replayer itself knows nothing of the network) forwards the
request to its provider's API (``recorder.provider_upstreams``, by path) and
saves the interaction, cleaned by ``recorder.scrub``, as ``<name>.yaml``:
event streams as sent, event by event; binary bodies (audio) as base64 with
``body_encoding: base64``. An existing cassette is never rewritten: a request
that differs from it is drift, reported as an error.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import time
from typing import Any
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from testopeninference.recorder import scrub
from testopeninference.recorder.atomic import write_atomic
from testopeninference.recorder.cassette import (
    BASE64_BODY, FILE_PREFIX, MULTIPART_PLACEHOLDER, Cassette, CassetteLibrary, dump_cassette,
)
from testopeninference.recorder.config import Upstream
from testopeninference.recorder.matchers import AZURE_PREFIX, IncomingRequest
from testopeninference.recorder.provider_upstreams import COMMON_FORWARDED_HEADERS, provider_upstream
from testopeninference.errors import RecordingError

AZURE_FORWARDED_HEADERS = (*COMMON_FORWARDED_HEADERS, "openai-beta")
TEXT_MEDIA_TYPES = ("application/json", "application/xml", "application/x-ndjson")
"""Besides ``text/*``, ``*+json`` and ``*+xml`` (and no type at all): bodies stored as text, not base64."""
LIVE_TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class LiveRecorder:
    """Forwards a request to the real API and saves the exchange as a cassette."""

    def __init__(self, upstream: Upstream, library: CassetteLibrary) -> None:
        self.upstream = upstream
        self.library = library
        self.descriptions: dict[str, str] = {}  # set before a request, written into the new cassette

    def record(self, name: str, request: IncomingRequest) -> Cassette:
        path = self.library.path(name)
        description = self.descriptions.pop(name, "")
        outgoing = self._outgoing(name, request)
        started = time.monotonic()
        try:
            with httpx.Client(timeout=LIVE_TIMEOUT) as client:
                response = client.send(outgoing, stream=True)
                raw = b"".join(response.iter_raw())
                response.close()
        except httpx.HTTPError as error:
            raise RecordingError(
                f"recording cassette {name!r} from {_origin(outgoing.url)} failed: {error!r}. "
                f"Check {self._base_url_variable(request)} and your network."
            ) from None
        body = scrub.decode_body(raw, response.headers.get("content-encoding", ""))
        data: dict[str, Any] = {"version": 2}
        if description:
            data["description"] = description
        data["interactions"] = [
            {
                "id": 0,
                "request": self._recorded_request(outgoing, request),
                "response": self._recorded_response(response, body, time.monotonic() - started),
            }
        ]
        write_atomic(path, dump_cassette(data))
        return self.library.load(name)

    def _outgoing(self, name: str, request: IncomingRequest) -> httpx.Request:
        """The live request: to Azure OpenAI for its path prefix, else to the provider its path names."""
        if not request.path.startswith(AZURE_PREFIX):
            return provider_upstream(request.path).request(self.upstream, request, name)
        if not (self.upstream.azure_api_key and self.upstream.azure_endpoint):
            raise RecordingError(
                "an Azure cassette is missing; set AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT to record it."
            )
        headers = {k: v for k, v in request.headers.items() if k in AZURE_FORWARDED_HEADERS}
        url = self.upstream.azure_endpoint.rstrip("/") + self._azure_path(request.path)
        query = parse_qs(request.query)
        if self.upstream.api_version:
            query["api-version"] = [self.upstream.api_version]
        headers["api-key"] = self.upstream.azure_api_key
        return httpx.Request(request.method, url, params=query, headers=headers, content=request.body)

    @staticmethod
    def _base_url_variable(request: IncomingRequest) -> str:
        if request.path.startswith(AZURE_PREFIX):
            return "AZURE_OPENAI_ENDPOINT"
        return provider_upstream(request.path).base_url_variable

    def _azure_path(self, path: str) -> str:
        if not self.upstream.azure_deployment:
            return path
        _, rest = path[len(AZURE_PREFIX) :].split("/", 1)
        return f"{AZURE_PREFIX}{self.upstream.azure_deployment}/{rest}"

    def _recorded_request(self, outgoing: httpx.Request, incoming: IncomingRequest) -> dict[str, Any]:
        headers = {k: v for k, v in scrub.scrub_headers(_header_lists(outgoing.headers)).items() if k != "Host"}
        body = incoming.body.decode("utf-8", errors="replace")
        form: dict[str, list[str]] = {}
        if incoming.is_multipart:
            form = self._save_form(incoming)
            body = MULTIPART_PLACEHOLDER
        else:
            body = scrub.scrub_secrets(scrub.pretty_json(body), self._secrets())
        url = scrub.scrub_url(str(outgoing.url))
        query = parse_qs(urlsplit(url).query)
        recorded = {
            "proto": "HTTP/1.1",
            "proto_major": 1,
            "proto_minor": 1,
            "content_length": len(body.encode()),
            "host": urlsplit(url).hostname,
            "body": body,
        }
        if form or query:
            recorded["form"] = {**query, **form}
        recorded.update({"headers": headers, "url": url, "method": outgoing.method})
        return recorded

    def _recorded_response(self, response: httpx.Response, raw: bytes, seconds: float) -> dict[str, Any]:
        body, stored = self._stored_body(response.headers.get("content-type", ""), raw)
        major, _, minor = response.http_version.removeprefix("HTTP/").partition(".")
        return {
            "proto": response.http_version,
            "proto_major": int(major or 1),
            "proto_minor": int(minor or 0),
            "content_length": len(body),
            **stored,
            "headers": scrub.scrub_headers(_header_lists(response.headers)),
            "status": f"{response.status_code} {response.reason_phrase}".strip(),
            "code": response.status_code,
            "duration": f"{seconds:.6f}s",
        }

    def _save_form(self, request: IncomingRequest) -> dict[str, list[str]]:
        """Multipart fields as a go-vcr ``form``; uploaded files go to ``testdata/`` as ``@name``."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.body
        )
        form: dict[str, list[str]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            field = name if isinstance(name, str) else ""  # the form field's name (RFC 2231 parts have none here)
            filename = part.get_filename()
            if filename:
                safe = Path(filename).name
                target = self.library.directory / "testdata" / safe
                if not target.exists():
                    payload = part.get_payload(decode=True)  # bytes for a decoded leaf part
                    write_atomic(target, payload if isinstance(payload, bytes) else b"")
                form.setdefault(field, []).append(FILE_PREFIX + safe)
            else:
                form.setdefault(field, []).append(part.get_content().strip())
        return form

    def _stored_body(self, content_type: str, raw: bytes) -> tuple[bytes, dict[str, str]]:
        """The body as stored (its bytes, and the cassette keys holding it): text scrubbed, JSON re-indented,
        an event stream as sent, event by event; a binary body (audio) as base64, marked so."""
        if not _is_text(content_type):
            return raw, {"body": base64.encodebytes(raw).decode("ascii").rstrip("\n"), "body_encoding": BASE64_BODY}
        text = scrub.scrub_secrets(raw.decode("utf-8", errors="replace"), self._secrets())
        if not content_type.startswith("text/event-stream"):
            text = scrub.pretty_json(text)
        return text.encode(), {"body": text}

    def _secrets(self) -> list[str]:
        return self.upstream.secrets


def _header_lists(headers: httpx.Headers) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for key, value in headers.multi_items():
        lists.setdefault("-".join(part.capitalize() for part in key.split("-")), []).append(value)
    return lists


def _is_text(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return not media or media.startswith("text/") or media in TEXT_MEDIA_TYPES or media.endswith(("+json", "+xml"))


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")

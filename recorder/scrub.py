"""Cleaning a live interaction before it is saved as a cassette.

Secrets and tracking headers go (compared case-insensitively), compressed
bodies are decompressed, JSON bodies are pretty-printed with sorted keys,
and Azure resource names in URLs are replaced, so a cassette can be
committed and shared.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from urllib.parse import urlsplit, urlunsplit

REMOVED_HEADERS = frozenset(
    {
        "authorization",  # OpenAI's and Cohere's bearer key
        "api-key",  # Azure OpenAI's
        "x-api-key",  # Anthropic's
        "anthropic-organization-id",
        "openai-organization",
        "openai-project",
        "cookie",
        "set-cookie",
        "traceparent",
        "tracestate",
        "baggage",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
        # Transport details that no longer hold once the body is decoded and re-indented.
        "content-encoding",
        "transfer-encoding",
        "content-length",
        "connection",
        "keep-alive",
    }
)

AZURE_RESOURCE_PLACEHOLDER = "resource-name"
_AZURE_HOST = re.compile(r"^[^.]+\.((?:openai|cognitiveservices|services\.ai)\.azure\.com)$", re.IGNORECASE)


def scrub_headers(headers: dict[str, list[str]]) -> dict[str, list[str]]:
    """Headers without secrets, tracking or transport details, sorted by name."""
    return {name: values for name, values in sorted(headers.items()) if name.lower() not in REMOVED_HEADERS}


def decode_body(body: bytes, content_encoding: str) -> bytes:
    """The body with gzip or deflate undone."""
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


def pretty_json(text: str) -> str:
    """JSON re-indented by 2 with sorted keys (as go-vcr's recorder writes it); other text unchanged."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def scrub_url(url: str) -> str:
    """The URL with an Azure resource name replaced by a placeholder."""
    parts = urlsplit(url)
    host = scrub_host(parts.hostname or "")
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scrub_host(host: str) -> str:
    return _AZURE_HOST.sub(rf"{AZURE_RESOURCE_PLACEHOLDER}.\1", host)


# Account identifiers and signatures that appear in bodies (image URLs carry all of them).
_IDENTIFIERS = (
    (re.compile(r"\borg-[A-Za-z0-9]{16,}"), "org-REDACTED"),
    (re.compile(r"\buser-[A-Za-z0-9]{16,}"), "user-REDACTED"),
    (re.compile(r"\bproj_[A-Za-z0-9]{16,}"), "proj_REDACTED"),
    (re.compile(r"([?&]sig=)[^&\"\s]+"), r"\1REDACTED"),
)


def scrub_identifiers(text: str) -> str:
    """Organization, user and project ids, and URL signatures, replaced by placeholders."""
    for pattern, replacement in _IDENTIFIERS:
        text = pattern.sub(replacement, text)
    return text


def scrub_secrets(text: str, secrets: list[str]) -> str:
    """Remove secret values and account identifiers that found their way into a body."""
    text = scrub_identifiers(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "REDACTED")
    return text

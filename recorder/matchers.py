"""Request matchers: plain functions that raise ``AssertionError`` saying what differs.

Users pick them by name (``match_on``) from ``MATCHERS``; ``register_matcher``
adds one. Bodies are compared as parsed JSON, so key order and whitespace do
not matter; multipart bodies are not compared.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Iterator

from testopeninference.recorder import json_diff
from testopeninference.recorder.cassette import RecordedRequest

AZURE_PREFIX = "/openai/deployments/"


@dataclasses.dataclass(frozen=True)
class IncomingRequest:
    """A request as the fake server received it."""

    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-case names
    body: bytes
    query: str = ""  # kept for forwarding to a live API; never matched

    @property
    def is_multipart(self) -> bool:
        return self.headers.get("content-type", "").startswith("multipart/")


Matcher = Callable[[RecordedRequest, IncomingRequest], None]


# Matchers raise AssertionError themselves rather than use `assert`: pytest rewrites the asserts of
# plugin packages, and python -O strips them.


def method(recorded: RecordedRequest, incoming: IncomingRequest) -> None:
    if recorded.method != incoming.method:
        raise AssertionError(f"method: cassette {recorded.method}, request {incoming.method}")


def path(recorded: RecordedRequest, incoming: IncomingRequest) -> None:
    """Paths match exactly; the query string (Azure's api-version) is ignored."""
    if recorded.path.rstrip("/") != incoming.path.rstrip("/"):
        raise AssertionError(f"path: cassette {recorded.path}, request {incoming.path}")


def body(recorded: RecordedRequest, incoming: IncomingRequest) -> None:
    """JSON bodies match when they parse to equal values."""
    if recorded.is_multipart or incoming.is_multipart:
        return
    expected = recorded.json()
    try:
        actual = json.loads(incoming.body) if incoming.body.strip() else None
    except ValueError:
        raise AssertionError(f"body: request body is not JSON: {incoming.body[:80]!r}") from None
    differences = list(json_differences(expected, actual))
    if differences:
        raise AssertionError("body: " + "; ".join(differences))


MATCHERS: dict[str, Matcher] = {"method": method, "path": path, "body": body}
DEFAULT_MATCH_ON = ("method", "path", "body")


def register_matcher(name: str, matcher: Matcher) -> None:
    MATCHERS[name] = matcher


def mismatches(recorded: RecordedRequest, incoming: IncomingRequest, match_on=DEFAULT_MATCH_ON) -> list[str]:
    """What differs between a recorded and an incoming request (empty when they match)."""
    found = []
    for name in match_on:
        try:
            MATCHERS[name](recorded, incoming)
        except AssertionError as error:
            found.append(str(error))
    return found


def json_differences(expected: object, actual: object) -> Iterator[str]:
    """Each differing JSON path with the cassette's and the request's value (``json_diff`` finds them)."""
    for found in sorted(json_diff.json_differences(expected, actual), key=lambda found: found.path):
        where = found.path or "<body>"
        if found.actual is json_diff.MISSING:
            yield f"{where} missing from request (cassette {_short(found.expected)})"
        elif found.expected is json_diff.MISSING:
            yield f"{where} not in cassette (request {_short(found.actual)})"
        else:
            yield f"{where}: cassette {_short(found.expected)}, request {_short(found.actual)}"


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."

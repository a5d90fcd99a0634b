"""Request matchers: plain functions that raise ``AssertionError`` saying what differs.

Each replayer builds its own ``RequestMatcher`` from ``match_on``: names of
the built-in matchers (``method``, ``path``, ``body``) or callables, checked
when it is built, so two replayers never see each other's matchers. Bodies are
compared as parsed JSON, so key order and whitespace do not matter; multipart
bodies are not compared. ``ignore_body_keys`` (dotted paths, ``*`` for any key
or list index) are removed from both bodies before they are compared.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Callable, Iterable, Iterator, Sequence, Union

from testopeninference.recorder import json_diff
from testopeninference.recorder.cassette import RecordedRequest
from testopeninference.errors import BodyMismatchError, ConfigurationError, UnknownMatcherError

AZURE_PREFIX = "/openai/deployments/"


@dataclasses.dataclass(frozen=True)
class IncomingRequest:
    """A request as the fake server received it."""

    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-case names
    body: bytes
    query: str = ""  # kept for forwarding to a live API; never matched
    cassette: str | None = None  # the cassette it was attributed to (by header or a unique body match)

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
    _compare_bodies(recorded, incoming, ())


def _compare_bodies(recorded: RecordedRequest, incoming: IncomingRequest, ignored: Sequence[tuple[str, ...]]) -> None:
    if recorded.is_multipart or incoming.is_multipart:
        return
    expected = recorded.json()
    try:
        actual = json.loads(incoming.body) if incoming.body.strip() else None
    except ValueError:
        raise AssertionError(f"body: request body is not JSON: {incoming.body[:80]!r}") from None
    if ignored:
        expected, actual = without_keys(expected, ignored), without_keys(actual, ignored)
    differences, keys = _body_differences(expected, actual)
    if differences:
        raise BodyMismatchError("body: " + "; ".join(differences), keys, whole=not keys)


DEFAULT_MATCH_ON = ("method", "path", "body")
BUILT_IN_MATCHERS: dict[str, Matcher] = {"method": method, "path": path, "body": body}

MatchOn = Sequence[Union[str, Matcher]]


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """What differs (one line per failing matcher) and the body keys that differ, in ``ignore_body_keys`` form."""

    differences: tuple[str, ...] = ()
    body_keys: tuple[str, ...] = ()
    whole_body: bool = False  # the bodies differ as wholes: the farthest a body can be

    def __bool__(self) -> bool:
        return bool(self.differences)


class RequestMatcher:
    """One replayer's matchers: ``match_on`` names or callables, checked here, and the body keys it ignores."""

    def __init__(self, match_on: MatchOn = DEFAULT_MATCH_ON, ignore_body_keys: Iterable[str] = ()) -> None:
        self.ignore_body_keys = parse_ignore_body_keys(ignore_body_keys)
        self._ignored = tuple(tuple(key.split(".")) for key in self.ignore_body_keys)
        self._matchers = tuple(self._resolve(item) for item in match_on)

    def _resolve(self, item: str | Matcher) -> Matcher:
        if isinstance(item, str) and item in BUILT_IN_MATCHERS:
            return self._body if item == "body" else BUILT_IN_MATCHERS[item]
        if callable(item):
            return item
        known = ", ".join(BUILT_IN_MATCHERS)
        raise UnknownMatcherError(
            f"unknown matcher {item!r} in match_on; use the names {known}, or a callable "
            "(recorded, incoming) that raises AssertionError saying what differs."
        )

    def _body(self, recorded: RecordedRequest, incoming: IncomingRequest) -> None:
        _compare_bodies(recorded, incoming, self._ignored)

    def compare(self, recorded: RecordedRequest, incoming: IncomingRequest) -> MatchResult:
        """What differs between a recorded and an incoming request (falsy when they match)."""
        differences: list[str] = []
        keys: tuple[str, ...] = ()
        whole = False
        for matcher in self._matchers:
            try:
                matcher(recorded, incoming)
            except BodyMismatchError as error:
                differences.append(str(error))
                keys += error.keys
                whole = whole or error.whole
            except AssertionError as error:
                differences.append(str(error))
        return MatchResult(tuple(differences), keys, whole)


def mismatches(recorded: RecordedRequest, incoming: IncomingRequest, match_on: MatchOn = DEFAULT_MATCH_ON) -> list[str]:
    """What differs between a recorded and an incoming request (empty when they match)."""
    return list(RequestMatcher(match_on).compare(recorded, incoming).differences)


def parse_ignore_body_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """The keys, checked: dotted paths of non-empty parts (``tools.*.strict``); a lone string is one key."""
    if isinstance(keys, str):
        keys = [keys]
    checked = []
    for key in keys:
        if not isinstance(key, str) or not all(part.strip() for part in key.split(".")):
            raise ConfigurationError(
                f"ignore_body_keys: {key!r} is not a dotted key path; write e.g. \"stream\" or \"tools.*.strict\" "
                "(* for any key or list index)."
            )
        checked.append(key.strip())
    return tuple(dict.fromkeys(checked))


def without_keys(value: object, ignored: Sequence[tuple[str, ...]]) -> object:
    """A copy of a JSON value without the keys at the ignored paths (``*``: any key or list index)."""
    if not ignored:
        return value
    if isinstance(value, dict):
        kept = {}
        for key, child in value.items():
            below = [rest[1:] for rest in ignored if rest[0] in ("*", key)]
            if any(len(rest) == 0 for rest in below):
                continue
            kept[key] = without_keys(child, below)
        return kept
    if isinstance(value, list):
        return [without_keys(item, [rest[1:] for rest in ignored if rest[0] in ("*", str(index)) and len(rest) > 1])
                for index, item in enumerate(value)]
    return value


_LIST_INDEX = re.compile(r"\[\d+\]")
_TRAILING_INDICES = re.compile(r"(\[\d+\])+$")


def _ignore_key(found: json_diff.JsonDifference) -> str:
    """The ignore key for where a difference is: ``tools[0].strict`` -> ``tools.*.strict``; an item of a
    list (``messages[0]``) -> the list, since an ignore key's last part names a key."""
    return _LIST_INDEX.sub(".*", _TRAILING_INDICES.sub("", found.path)).lstrip(".")


def _body_differences(expected: object, actual: object) -> tuple[list[str], tuple[str, ...]]:
    """The differing JSON paths, worded with the cassette's and the request's value, and their ignore keys."""
    found = sorted(json_diff.json_differences(expected, actual), key=lambda item: item.path)
    keys = tuple(dict.fromkeys(key for key in map(_ignore_key, found) if key))
    return [_worded(item) for item in found], keys


def json_differences(expected: object, actual: object) -> Iterator[str]:
    """Each differing JSON path with the cassette's and the request's value (``json_diff`` finds them)."""
    yield from _body_differences(expected, actual)[0]


def _worded(found: json_diff.JsonDifference) -> str:
    where = found.path or "<body>"
    if found.actual is json_diff.MISSING:
        return f"{where} missing from request (cassette {_short(found.expected)})"
    if found.expected is json_diff.MISSING:
        return f"{where} not in cassette (request {_short(found.actual)})"
    return f"{where}: cassette {_short(found.expected)}, request {_short(found.actual)}"


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."

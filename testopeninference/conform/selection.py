"""Which cassettes ``conform -k EXPR`` scores: pytest-style expressions over cassette names and endpoints.

A term matches a cassette when it is a substring of the cassette's name or
its endpoint (``chat``, ``embeddings``, ...), or, holding ``*``, ``?`` or
``[``, when it matches either whole as an fnmatch pattern. Terms combine with
``and``, ``or``, ``not`` and parentheses, as in pytest: ``-k "chat and not
streaming"``, ``-k "embeddings or completion-basic"``, ``-k "chat-*-usage"``.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Callable, NoReturn

from testopeninference.errors import ConformUsageError

Matcher = Callable[[str, str], bool]  # (cassette name, endpoint) -> chosen
_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_WORDS = ("and", "or", "not")


def parse_selection(expression: str) -> Matcher:
    """A matcher for ``expression``, or ``ConformUsageError`` saying where it is malformed."""
    tokens = _tokens(expression)
    if not tokens:
        return lambda name, endpoint: True
    parser = _Parser(tokens, expression)
    matcher = parser.either()
    if parser.position < len(tokens):
        parser.fail(f"unexpected {tokens[parser.position]!r}")
    return matcher


def _tokens(expression: str) -> list[str]:
    return [match.group(1) for match in _TOKEN.finditer(expression)]


def term_matches(term: str, name: str, endpoint: str) -> bool:
    """Substring of the name or endpoint; with a wildcard, an fnmatch of either."""
    if any(char in term for char in "*?["):
        return fnmatchcase(name, term) or fnmatchcase(endpoint, term)
    return term in name or term in endpoint


class _Parser:
    """Recursive descent: either := both ('or' both)*; both := negated ('and' negated)*; negated := 'not'
    negated | '(' either ')' | term."""

    def __init__(self, tokens: list[str], expression: str) -> None:
        self.tokens = tokens
        self.expression = expression
        self.position = 0

    def fail(self, what: str) -> NoReturn:
        raise ConformUsageError(
            f"-k {self.expression!r}: {what}; write terms (substrings of cassette names or endpoints, or fnmatch "
            "patterns) joined by and, or, not and parentheses, e.g. -k 'chat and not streaming'.")

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def either(self) -> Matcher:
        parts = [self.both()]
        while self.peek() == "or":
            self.position += 1
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else (lambda name, endpoint: any(p(name, endpoint) for p in parts))

    def both(self) -> Matcher:
        parts = [self.negated()]
        while self.peek() == "and":
            self.position += 1
            parts.append(self.negated())
        return parts[0] if len(parts) == 1 else (lambda name, endpoint: all(p(name, endpoint) for p in parts))

    def negated(self) -> Matcher:
        token = self.peek()
        if token is None:
            self.fail("the expression ends where a term was expected")
        self.position += 1
        if token == "not":
            inner = self.negated()
            return lambda name, endpoint: not inner(name, endpoint)
        if token == "(":
            inner = self.either()
            if self.peek() != ")":
                self.fail("a '(' is not closed")
            self.position += 1
            return inner
        if token in (")", "and", "or"):
            self.fail(f"unexpected {token!r} where a term was expected")
        return lambda name, endpoint: term_matches(token, name, endpoint)

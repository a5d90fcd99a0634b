"""Every error the harness raises, rooted in one type so callers can catch it.

    TestOpenInferenceError
     ├── CassetteError
     │    ├── CassetteNotFoundError (FileNotFoundError)
     │    └── InvalidCassetteError (ValueError)
     ├── AliasRefusedError (yaml.YAMLError)
     ├── GoldenSpanError
     │    ├── GoldenSpanMissingError (FileNotFoundError)
     │    └── InvalidGoldenSpanError (ValueError)
     ├── RecordingError
     │    ├── VersionMismatchError
     │    ├── ProxyError
     │    └── SpanTimeoutError (TimeoutError)
     ├── ConfigurationError (ValueError)
     │    ├── NotCoveredError
     │    ├── BaseImageMissingError
     │    ├── UnknownMatcherError
     │    └── ConformUsageError
     │         └── InvalidBaselineError
     ├── SpanMismatchError (AssertionError)
     │    ├── SpanSelectionError
     │    └── TracePropagationError
     ├── InvalidOTLPError (ValueError)
     ├── InvalidOpenInferenceSpanError (AssertionError)
     ├── BodyMismatchError (AssertionError)
     ├── RequestError
     ├── ClientGoneError
     ├── GatewayProcessError
     └── GatewayUnreachableError (ConnectionError)
          └── GatewayRefusedError

Each message says what failed, where, and what to do next; a "what to do" that several messages give is
kept once, at the end of this module (``record_command``, ``REINSTALL_HINT``, ``repair_hint``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from yaml._yaml import Mark as LibYAMLMark


class TestOpenInferenceError(Exception):
    """Root of every error raised by testopeninference and its recorder."""

    __test__ = False  # not a pytest test class, despite the name


class CassetteError(TestOpenInferenceError):
    """A cassette cannot be found or read."""


class CassetteNotFoundError(CassetteError, FileNotFoundError):
    """No cassette file has the requested name."""


class InvalidCassetteError(CassetteError, ValueError):
    """A cassette file exists but is not a usable go-vcr version 2 cassette."""


class GoldenSpanError(TestOpenInferenceError):
    """A golden span file cannot be found or read."""


class GoldenSpanMissingError(GoldenSpanError, FileNotFoundError):
    """The golden span is not recorded yet and recording is off."""


class InvalidGoldenSpanError(GoldenSpanError, ValueError):
    """A golden span file exists but does not hold a protojson Span."""


class RecordingError(TestOpenInferenceError):
    """Recording a golden span failed."""


class VersionMismatchError(RecordingError):
    """Installed packages differ from the versions pinned in requirements.txt."""


class ProxyError(RecordingError):
    """The instrumented proxy failed to start, died or answered badly."""


class SpanTimeoutError(RecordingError, TimeoutError):
    """No span for a request reached the collector in time."""


class ConfigurationError(TestOpenInferenceError, ValueError):
    """A setting (argument or environment variable) has an invalid value."""


class NotCoveredError(ConfigurationError):
    """The convention's instrumentation does not cover this cassette, so it has no golden."""


class BaseImageMissingError(ConfigurationError):
    """The Docker engine has no copy of the proxy image's base image, and nothing here pulls one."""


class SpanMismatchError(TestOpenInferenceError, AssertionError):
    """A span differs from its golden; the message lists each difference."""


class UnknownMatcherError(ConfigurationError):
    """A replayer's ``match_on`` names a matcher that does not exist (the message lists the known ones)."""


class InvalidOTLPError(TestOpenInferenceError, ValueError):
    """OTLP/JSON (or protojson) that is no OTLP message: the message names the field and what it held.

    The collector answers it with 400, ``as_span`` with ``InvalidGoldenSpanError``."""


class SpanSelectionError(SpanMismatchError):
    """A trace holds no span, or several, where a test asked for exactly one (such as its LLM span)."""


class InvalidOpenInferenceSpanError(TestOpenInferenceError, AssertionError):
    """A span breaks the OpenInference semantic conventions; ``problems`` holds one line per problem."""

    def __init__(self, span_name: str, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(
            f"span {span_name!r} is not valid OpenInference ({len(self.problems)} problem"
            f"{'' if len(self.problems) == 1 else 's'}):\n{lines}\n"
            "Fix what the gateway writes for these keys; the rules are OpenInference's semantic conventions"
            " (https://arize-ai.github.io/openinference/spec/), see testopeninference/openinference_spec.py."
        )


class TracePropagationError(SpanMismatchError):
    """The trace was broken somewhere between the caller, the gateway and its backend."""


class AliasRefusedError(TestOpenInferenceError, yaml.YAMLError):
    """A YAML anchor or alias in a cassette or manifest; ``problem_mark`` says where, like PyYAML's own errors.

    A ``yaml.YAMLError`` so that loaders treat it as malformed YAML; cassettes and the manifest turn it into
    ``InvalidCassetteError`` or ``InvalidGoldenSpanError``."""

    def __init__(self, problem: str, problem_mark: yaml.Mark | LibYAMLMark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = problem_mark


class BodyMismatchError(TestOpenInferenceError, AssertionError):
    """The body matcher's failure, with the differing keys in ``ignore_body_keys`` form (``tools.*.strict``).

    An ``AssertionError``, as every matcher's failure is."""

    def __init__(self, message: str, keys: tuple[str, ...], whole: bool = False) -> None:
        super().__init__(message)
        self.keys = keys
        self.whole = whole  # the bodies differ as wholes (nothing in common to name a key by)


class RequestError(TestOpenInferenceError):
    """A request our fake server or collector refuses: ``status`` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ClientGoneError(TestOpenInferenceError):
    """The client hung up before its request body was complete: there is no one to answer."""


class ConformUsageError(ConfigurationError):
    """``testopeninference conform`` was asked for something it cannot do (a bad ``-k`` expression, header,
    env file or level); the command exits 2."""


class InvalidBaselineError(ConformUsageError):
    """A ``conform --baseline`` file is not a baseline: the message names the file and line."""


class GatewayProcessError(TestOpenInferenceError):
    """The gateway under test (``conform --gateway-cmd``) did not get ready in time, or died; the message
    quotes its output."""


class GatewayUnreachableError(TestOpenInferenceError, ConnectionError):
    """``send_cassette`` (or ``testopeninference send``) could not reach the gateway or read its reply."""


# What to do: each piece of advice that several messages give, written once.

PYTEST_RECORD = "pytest --record-spans"
"""The pytest way to record the goldens a test run uses."""

REINSTALL_HINT = ("it ships with the installed testopeninference package: reinstall it "
                  "(pip install --force-reinstall testopeninference)")
"""For a packaged file (cassette, golden, manifest) that is broken: it is never written, only reinstalled."""


def record_command(names: str = "", *, force: bool = True, options: str = "") -> str:
    """The command line that records goldens, such as ``testopeninference record --force chat-basic``."""
    return " ".join(part for part in ("testopeninference record", options.strip(), "--force" if force else "", names) if part)


def repair_hint(name: str, packaged: bool) -> str:
    """For an unreadable golden: reinstall a packaged one, record one's own again."""
    if packaged:
        return REINSTALL_HINT
    return f"delete it and record it again ({record_command(name)}, or {PYTEST_RECORD})"


class GatewayRefusedError(GatewayUnreachableError):
    """Nothing accepted the connection at the gateway's URL (it is not running, or listens elsewhere): no request
    was sent, so ``conform`` stops rather than scoring every cassette as an error."""

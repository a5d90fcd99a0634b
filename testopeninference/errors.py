"""Every error the harness raises, rooted in one type so callers can catch it.

    TestOpenInferenceError
     ├── CassetteError
     │    ├── CassetteNotFoundError (FileNotFoundError)
     │    └── InvalidCassetteError (ValueError)
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
     │    └── UnknownMatcherError
     ├── SpanMismatchError (AssertionError)
     │    └── SpanSelectionError
     ├── InvalidOTLPError (ValueError)
     └── GatewayUnreachableError (ConnectionError)

Each message says what failed, where, and what to do next.
"""

from __future__ import annotations


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


class GatewayUnreachableError(TestOpenInferenceError, ConnectionError):
    """``send_cassette`` (or ``testopeninference send``) could not reach the gateway or read its reply."""

"""Golden OpenInference spans for AI gateway tests.

    span = get_chat_span("chat-basic")        # the golden Span protobuf
    assert_span_equal(span, gateway_span)     # lenient, reference-harness rules
"""

from testopeninference.errors import (  # first: the recorder imports it too
    CassetteError,
    CassetteNotFoundError,
    ConfigurationError,
    GoldenSpanError,
    GoldenSpanMissingError,
    InvalidCassetteError,
    InvalidGoldenSpanError,
    ProxyError,
    RecordingError,
    SpanMismatchError,
    SpanTimeoutError,
    TestOpenInferenceError,
    VersionMismatchError,
)
from testopeninference.catalogue import Endpoint, cassettes_by_endpoint, list_cassettes
from testopeninference.compare import assert_span_equal, span_differences
from testopeninference.goldens import close_recorders, get_chat_span, get_span

__all__ = [
    "CassetteError",
    "CassetteNotFoundError",
    "ConfigurationError",
    "Endpoint",
    "GoldenSpanError",
    "GoldenSpanMissingError",
    "InvalidCassetteError",
    "InvalidGoldenSpanError",
    "ProxyError",
    "RecordingError",
    "SpanMismatchError",
    "SpanTimeoutError",
    "TestOpenInferenceError",
    "VersionMismatchError",
    "assert_span_equal",
    "cassettes_by_endpoint",
    "close_recorders",
    "get_chat_span",
    "get_span",
    "list_cassettes",
    "span_differences",
]

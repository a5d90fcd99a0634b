"""Golden OpenInference spans for AI gateway tests.

    span = get_chat_span("chat-basic")        # the golden Span protobuf
    assert_span_equal(span, gateway_span)     # lenient, reference-harness rules

Errors load eagerly; the rest loads on first use, because the recorder
imports ``testopeninference.errors`` and must be importable on its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from testopeninference.errors import (
    CassetteError,
    CassetteNotFoundError,
    ConfigurationError,
    GoldenSpanError,
    GoldenSpanMissingError,
    InvalidCassetteError,
    InvalidGoldenSpanError,
    NotCoveredError,
    ProxyError,
    RecordingError,
    SpanMismatchError,
    SpanTimeoutError,
    TestOpenInferenceError,
    VersionMismatchError,
)

_LAZY = {
    "CatalogueEntry": "testopeninference.catalogue",
    "Endpoint": "testopeninference.catalogue",
    "cassette_catalogue": "testopeninference.catalogue",
    "cassettes_by_endpoint": "testopeninference.catalogue",
    "list_cassettes": "testopeninference.catalogue",
    "assert_span_equal": "testopeninference.compare",
    "span_differences": "testopeninference.compare",
    "close_recorders": "testopeninference.goldens",
    "get_chat_span": "testopeninference.goldens",
    "get_log_records": "testopeninference.goldens",
    "assert_log_records_equal": "testopeninference.compare",
    "log_record_differences": "testopeninference.compare",
    "get_span": "testopeninference.goldens",
}

if TYPE_CHECKING:
    from testopeninference.catalogue import CatalogueEntry, Endpoint, cassette_catalogue, cassettes_by_endpoint, list_cassettes
    from testopeninference.compare import (
        assert_log_records_equal,
        assert_span_equal,
        log_record_differences,
        span_differences,
    )
    from testopeninference.goldens import close_recorders, get_chat_span, get_log_records, get_span


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'testopeninference' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CassetteError",
    "CassetteNotFoundError",
    "CatalogueEntry",
    "ConfigurationError",
    "Endpoint",
    "GoldenSpanError",
    "GoldenSpanMissingError",
    "InvalidCassetteError",
    "InvalidGoldenSpanError",
    "NotCoveredError",
    "ProxyError",
    "RecordingError",
    "SpanMismatchError",
    "SpanTimeoutError",
    "TestOpenInferenceError",
    "VersionMismatchError",
    "assert_log_records_equal",
    "assert_span_equal",
    "cassette_catalogue",
    "cassettes_by_endpoint",
    "close_recorders",
    "get_chat_span",
    "get_log_records",
    "get_span",
    "list_cassettes",
    "log_record_differences",
    "span_differences",
]

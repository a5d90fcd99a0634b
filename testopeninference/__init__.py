"""Golden OpenTelemetry spans for AI gateway tests.

    span = get_span("chat-basic")                          # the golden Span protobuf
    span = get_span("chat-basic", convention="otel-genai")  # another convention's golden
    assert_span_equal(span, gateway_span)                   # lenient, reference-harness rules

Every error is a ``TestOpenInferenceError`` saying what, where and what to do. The pytest
plugin adds fixtures (``fake_openai``, ``otlp_collector``, ``golden_span``) and the
``testopeninference`` command lists, shows, records, serves and scores (``conform``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from testopeninference.errors import (
    BaseImageMissingError,
    CassetteError,
    CassetteNotFoundError,
    ConfigurationError,
    GoldenSpanError,
    GoldenSpanMissingError,
    InvalidCassetteError,
    InvalidGoldenSpanError,
    InvalidOpenInferenceSpanError,
    NotCoveredError,
    ProxyError,
    RecordingError,
    SpanMismatchError,
    SpanTimeoutError,
    TestOpenInferenceError,
    VersionMismatchError,
)

if TYPE_CHECKING:  # for type checkers; at run time each is imported on first use (``__getattr__``)
    from testopeninference.catalogue import (
        CatalogueEntry,
        Endpoint,
        cassette_catalogue,
        cassettes_by_endpoint,
        list_cassettes,
    )
    from testopeninference.compare import (
        SpanComparison,
        assert_log_records_equal,
        assert_span_equal,
        compare_spans,
        log_record_differences,
        span_differences,
    )
    from testopeninference.goldens import close_recorders, get_chat_span, get_log_records, get_span
    from testopeninference.openinference_spec import assert_valid_openinference, validate_openinference

_LAZY = {
    **dict.fromkeys(["CatalogueEntry", "Endpoint", "cassette_catalogue", "cassettes_by_endpoint", "list_cassettes"],
                    "testopeninference.catalogue"),
    **dict.fromkeys(["SpanComparison", "assert_log_records_equal", "assert_span_equal", "compare_spans",
                     "log_record_differences", "span_differences"], "testopeninference.compare"),
    **dict.fromkeys(["close_recorders", "get_chat_span", "get_log_records", "get_span"], "testopeninference.goldens"),
    **dict.fromkeys(["assert_valid_openinference", "validate_openinference"], "testopeninference.openinference_spec"),
}
"""Public names and the module each comes from: ``import testopeninference`` (as ``testopeninference record``
does first) stays cheap, so the command starts its proxy before the comparison and recorder modules load."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'testopeninference' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.2.0"

__all__ = [
    "__version__",
    "BaseImageMissingError",
    "CassetteError",
    "CassetteNotFoundError",
    "CatalogueEntry",
    "ConfigurationError",
    "Endpoint",
    "GoldenSpanError",
    "GoldenSpanMissingError",
    "InvalidCassetteError",
    "InvalidGoldenSpanError",
    "InvalidOpenInferenceSpanError",
    "NotCoveredError",
    "ProxyError",
    "RecordingError",
    "SpanComparison",
    "SpanMismatchError",
    "SpanTimeoutError",
    "TestOpenInferenceError",
    "VersionMismatchError",
    "assert_log_records_equal",
    "assert_span_equal",
    "assert_valid_openinference",
    "cassette_catalogue",
    "cassettes_by_endpoint",
    "close_recorders",
    "compare_spans",
    "get_chat_span",
    "get_log_records",
    "get_span",
    "list_cassettes",
    "log_record_differences",
    "span_differences",
    "validate_openinference",
]

"""Spans (and log records) from wherever a gateway test has them: protobuf, protojson, OTLP/JSON, or files.

protojson (what goldens and Go's ``protojson`` hold) writes ids as base64;
OTLP/JSON (what OTLP/HTTP JSON exporters send) writes them as hex. The
collector's decoder (``recorder.otlp_json``) reads both, telling ids apart by
their length.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.otlp_json import HEX_OR_BASE64, message_from_json
from testopeninference.recorder.span_file import log_records, read_golden_text, read_logs

from testopeninference.errors import InvalidGoldenSpanError, InvalidOTLPError


def as_span(value: Any) -> Span:
    """A ``Span`` from a Span, an object with ``.span`` (a collected span), a dict, or a JSON file path."""
    if isinstance(value, Span):
        return value
    if hasattr(value, "span") and isinstance(value.span, Span):
        return value.span
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        try:
            data = json.loads(read_golden_text(path))
        except RecursionError:
            raise InvalidGoldenSpanError(f"{path}: cannot read a span (JSON nested too deeply).") from None
        except (OSError, ValueError) as error:
            raise InvalidGoldenSpanError(f"{path}: cannot read a span ({error}).") from None
        return span_from_dict(data, source=str(path))
    if isinstance(value, dict):
        return span_from_dict(value)
    raise TypeError(f"cannot make a Span from {type(value).__name__}; give a Span, a dict or a JSON file path")


def as_log_records(value: Any) -> list[LogRecord]:
    """Log records from a list of ``LogRecord``s (or collected records), a ``LogsData``, or a JSON file path."""
    if isinstance(value, LogsData):
        return log_records(value)
    if isinstance(value, (str, os.PathLike)):
        return log_records(read_logs(Path(value)))
    if isinstance(value, (list, tuple)):
        return [item.log_record if hasattr(item, "log_record") else item for item in value]
    raise TypeError(f"cannot read log records from {type(value).__name__}; give a list, a LogsData or a file path")


def span_from_dict(data: dict[str, Any], source: str = "<dict>") -> Span:
    """Parse protojson or OTLP/JSON; an export request holding exactly one span is accepted too."""
    if "resourceSpans" in data:
        spans = [s for rs in data["resourceSpans"] for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]
        if len(spans) != 1:
            raise InvalidGoldenSpanError(f"{source}: an OTLP export with {len(spans)} spans; pass one span.")
        data = spans[0]
    try:
        return message_from_json(data, Span, HEX_OR_BASE64)
    except InvalidOTLPError as error:
        raise InvalidGoldenSpanError(f"{source}: not an OpenTelemetry Span ({error}).") from None

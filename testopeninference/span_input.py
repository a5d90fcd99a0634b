"""Spans (and log records) from wherever a gateway test has them: protobuf, protojson, OTLP/JSON, or files.

protojson (what goldens and Go's ``protojson`` hold) writes ids as base64;
OTLP/JSON (what OTLP/HTTP JSON exporters send) writes them as hex, which
protobuf's JSON parser would silently misread as base64. Ids are therefore
recognised by their form and converted before parsing.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.span_file import log_records, read_golden_text, read_logs

from testopeninference.errors import InvalidGoldenSpanError

_HEX_ID = {"traceId": re.compile(r"^[0-9a-fA-F]{32}$"), "spanId": re.compile(r"^[0-9a-fA-F]{16}$"),
           "parentSpanId": re.compile(r"^[0-9a-fA-F]{16}$")}


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


def span_from_dict(data: dict, source: str = "<dict>") -> Span:
    """Parse protojson or OTLP/JSON; an export request holding exactly one span is accepted too."""
    if "resourceSpans" in data:
        spans = [s for rs in data["resourceSpans"] for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]
        if len(spans) != 1:
            raise InvalidGoldenSpanError(f"{source}: an OTLP export with {len(spans)} spans; pass one span.")
        data = spans[0]
    try:
        return json_format.ParseDict(hex_ids_to_base64(data), Span(), ignore_unknown_fields=True)
    except RecursionError:
        raise InvalidGoldenSpanError(f"{source}: not an OpenTelemetry Span (nested too deeply).") from None
    except json_format.ParseError as error:
        raise InvalidGoldenSpanError(f"{source}: not an OpenTelemetry Span ({error}).") from None


def hex_ids_to_base64(data: Any) -> Any:
    """A copy of OTLP/JSON with hex trace and span ids (in spans, events, links) as protojson's base64."""
    if isinstance(data, list):
        return [hex_ids_to_base64(item) for item in data]
    if not isinstance(data, dict):
        return data
    converted = {}
    for key, item in data.items():
        pattern = _HEX_ID.get(key)
        if pattern is not None and isinstance(item, str) and pattern.match(item):
            item = base64.b64encode(bytes.fromhex(item)).decode()
        converted[key] = hex_ids_to_base64(item)
    return converted

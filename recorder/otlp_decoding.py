"""OTLP/HTTP request bodies to protobuf messages, and answers back to bytes.

The OTLP/HTTP rules live here, apart from the HTTP plumbing in ``recorder.collector``:
two encodings (binary protobuf, and OTLP/JSON, read by ``recorder.otlp_json``), id sizes, gzip and deflate bodies inflated as they arrive, and
a size limit that also holds after decompression (h11 does the HTTP framing). Every
refusal is a ``RequestError`` carrying the HTTP status the specification asks for.
"""

from __future__ import annotations

import json
import re
import zlib
from itertools import repeat
from operator import attrgetter
from typing import Callable, Sequence, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.otlp_json import HEX, message_from_json
from testopeninference.errors import InvalidOTLPError, RequestError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

M = TypeVar("M", bound=Message)
T = TypeVar("T")

# The google.rpc code in each refusal's Status (gRPC's HTTP mapping where OTLP says nothing).
_RPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    404: code_pb2.UNIMPLEMENTED,
    405: code_pb2.UNIMPLEMENTED,
    408: code_pb2.DEADLINE_EXCEEDED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    501: code_pb2.UNIMPLEMENTED,
}

_SPAN_CONTEXT_IDS = {"traceId": 16, "spanId": 8}  # the ids a link or log record carries, and their sizes


def media_type(content_type: str | None) -> str:
    """The media type alone, lower-cased: parameters such as ``charset`` do not change the encoding."""
    return (content_type or "").split(";")[0].strip().lower()


def content_coding(header: str | None) -> str:
    """The body's compression, normalised; anything but gzip, deflate or none is refused with 415."""
    coding = (header or "").strip().lower()
    if coding in ("", "identity"):
        return "identity"
    if coding in ("gzip", "x-gzip"):
        return "gzip"
    if coding == "deflate":
        return coding
    raise RequestError(415, f"unsupported Content-Encoding {header!r}; send gzip, deflate or an uncompressed body")


class Inflater:
    """Decompresses a body as its pieces arrive, in time linear in its size, refusing it past ``limit`` inflated.

    Concatenated gzip members make one body (as ``gzip.decompress`` reads them), and zero bytes after a
    member are padding, as gzip and the OpenTelemetry Collector accept. Each member is fed through a window
    that starts small and doubles, so the bytes zlib copies out after a member ends stay proportional to that
    member: many tiny members cost no more than one large one.
    """

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self._out: list[bytes] = []  # joined once, at the end: a body that came in one piece is not copied
        self._size = 0
        self._member: zlib._Decompress | None = None
        self._members = 0
        self._head = b""  # deflate: the first bytes, until they tell zlib from raw deflate

    def feed(self, data: bytes) -> None:
        if self.coding == "identity":
            self._append(data)
            return
        view = memoryview(self._head + data) if self._head else memoryview(data)
        self._head = b""
        position = 0
        while position < len(view):
            if self._member is None:
                position = self._start_member(view, position)
                if self._member is None:
                    return
            position = self._inflate(view, position)

    def _start_member(self, view: memoryview, position: int) -> int:
        """Skip zero padding after a gzip member and open the next member, if any bytes are left."""
        if self.coding == "gzip" and self._members:
            found = _NON_ZERO.search(view, position)
            if found is None:
                return len(view)
            position = found.start()
        if self.coding == "deflate" and len(view) - position < 2:
            self._head = bytes(view[position:])
            return len(view)
        self._member = zlib.decompressobj(wbits=_wbits(self.coding, bytes(view[position : position + 2])))
        self._window = _FIRST_WINDOW
        return position

    def _inflate(self, view: memoryview, position: int) -> int:
        member = self._member
        assert member is not None  # feed() opens a member before inflating
        piece = view[position : position + self._window]
        try:
            self._append(member.decompress(piece, self.limit + 1 - self._size))
        except zlib.error as error:
            raise RequestError(400, f"corrupt {self.coding} body: {error}") from None
        if not member.eof:
            self._window = min(2 * self._window, _LAST_WINDOW)
            return position + len(piece)
        consumed = len(piece) - len(member.unused_data)
        self._member = None
        self._members += 1
        return position + consumed

    def _append(self, data: bytes) -> None:
        self._out.append(data)
        self._size += len(data)
        if self._size > self.limit:
            raise RequestError(413, f"the body inflates past the {self.limit}-byte limit")

    def finish(self) -> bytes:
        """The whole inflated body; a member cut short is refused with 400."""
        if self._member is not None or self._head:
            raise RequestError(400, f"truncated {self.coding} body")
        return b"".join(self._out)


_NON_ZERO = re.compile(rb"[^\x00]")
_FIRST_WINDOW = 256
_LAST_WINDOW = 1 << 20


def decompress(body: bytes, coding: str, limit: int) -> bytes:
    """Inflate at most ``limit`` bytes: a gzip bomb is refused after ``limit`` bytes of work, not all of it."""
    inflater = Inflater(coding, limit)
    inflater.feed(body)
    return inflater.finish()


def _wbits(coding: str, data: bytes) -> int:
    """gzip framing; for deflate the zlib wrapper HTTP means, or the raw deflate some clients send instead."""
    if coding == "gzip":
        return 16 + zlib.MAX_WBITS
    zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


def decode(body: bytes, media: str, message_type: type[M]) -> M:
    """Parse a decompressed body in either OTLP encoding; an empty body is an empty request.

    OTLP/JSON ids are checked for size here, while turned from hex; protobuf ids by ``spans_of`` and
    ``log_records_of``, in the pass that takes the items out.
    """
    if media == JSON:
        return _decode_json(body, message_type) if body else message_type()
    try:
        return message_type.FromString(body)
    except (DecodeError, RecursionError) as error:
        raise RequestError(400, f"cannot decode the protobuf {message_type.DESCRIPTOR.name}: {error}") from None


_TRACE_ID_SIZES = (16, 0)  # the specification allows a missing id
_SPAN_ID_SIZES = (8, 0)
_TRACE_ID_SIZE_SET, _SPAN_ID_SIZE_SET = frozenset(_TRACE_ID_SIZES), frozenset(_SPAN_ID_SIZES)
_TRACE_ID, _SPAN_ID = attrgetter("trace_id"), attrgetter("span_id")
_PARENT_SPAN_ID, _LINKS = attrgetter("parent_span_id"), attrgetter("links")
_RECORD_IDS = attrgetter("trace_id", "span_id")


def spans_of(
    request: ExportTraceServiceRequest, keep: Callable[[Resource, InstrumentationScope, Span], T], check_ids: bool
) -> list[T]:
    """``keep(resource, scope, span)`` for every span, in order; with ``check_ids``, a trace id that is not
    16 bytes or a span id that is not 8 (in a span or its links) is refused with 400 first.

    This runs for every export: each span is wrapped once, its ids read with one C call, and ``keep``
    called from C (``map``), which costs less per span than any Python loop doing both.
    """
    kept: list[T] = []
    for resource_spans in request.resource_spans:
        resource = resource_spans.resource
        for scope_spans in resource_spans.scope_spans:
            spans = list(scope_spans.spans)
            if check_ids and _wrong_span_id_sizes(spans):
                _refuse_id_sizes(spans, {**_SPAN_CONTEXT_IDS, "parentSpanId": 8})
            kept += map(keep, repeat(resource), repeat(scope_spans.scope), spans)
    return kept


def log_records_of(
    request: ExportLogsServiceRequest, keep: Callable[[Resource, InstrumentationScope, LogRecord], T], check_ids: bool
) -> list[T]:
    """``keep(resource, scope, log_record)`` for every log record, as ``spans_of`` does for spans."""
    kept: list[T] = []
    for resource_logs in request.resource_logs:
        resource = resource_logs.resource
        for scope_logs in resource_logs.scope_logs:
            records = list(scope_logs.log_records)
            if check_ids and _wrong_id_sizes(records):
                _refuse_id_sizes(records, _SPAN_CONTEXT_IDS)
            kept += map(keep, repeat(resource), repeat(scope_logs.scope), records)
    return kept


def _wrong_span_id_sizes(spans: Sequence[Span]) -> bool:
    """Whether a span, or a link of one, has an id of the wrong size. Each field's lengths are gathered
    by ``map`` in C; only spans that have links are looked at one by one."""
    return (
        not _TRACE_ID_SIZE_SET.issuperset(map(len, map(_TRACE_ID, spans)))
        or not _SPAN_ID_SIZE_SET.issuperset(map(len, map(_SPAN_ID, spans)))
        or not _SPAN_ID_SIZE_SET.issuperset(map(len, map(_PARENT_SPAN_ID, spans)))
        or any(_wrong_id_sizes(links) for links in map(_LINKS, spans) if links)
    )


def _wrong_id_sizes(holders: Sequence[Message]) -> bool:
    """Whether a link or log record has a trace id that is not 16 bytes or a span id that is not 8 (nor empty)."""
    return any(
        len(trace_id) not in _TRACE_ID_SIZES or len(span_id) not in _SPAN_ID_SIZES
        for trace_id, span_id in map(_RECORD_IDS, holders)
    )


def _refuse_id_sizes(holders: Sequence[Message], ids: dict[str, int]) -> None:
    """The RequestError naming the first id of the wrong size (the slow path, once something is wrong)."""
    for holder in holders:
        for name, size in ids.items():
            value = getattr(holder, _PROTO_NAMES[name])
            if len(value) not in (0, size):
                kind = type(holder).__name__
                raise RequestError(400, f"a {kind}'s {name} has {len(value)} bytes; it must have {size} (or none)")
        for link in getattr(holder, "links", ()):
            _refuse_id_sizes([link], _SPAN_CONTEXT_IDS)


_PROTO_NAMES = {"traceId": "trace_id", "spanId": "span_id", "parentSpanId": "parent_span_id"}


def _decode_json(body: bytes, message_type: type[M]) -> M:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise RequestError(400, f"cannot decode the body as JSON: {error}") from None
    try:
        return message_from_json(document, message_type, HEX)
    except InvalidOTLPError as error:
        raise RequestError(400, f"cannot decode the JSON as {message_type.DESCRIPTOR.name}: {error}") from None


def encode(message: Message, media: str) -> bytes:
    """An answer in the request's encoding: JSON for JSON requests, binary protobuf otherwise."""
    if media == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def status(http_status: int, message: str) -> status_pb2.Status:
    """The ``google.rpc.Status`` body OTLP/HTTP puts in every error answer."""
    return status_pb2.Status(code=_RPC_CODES.get(http_status, code_pb2.UNKNOWN), message=message)

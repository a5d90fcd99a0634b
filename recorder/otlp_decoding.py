"""OTLP/HTTP request bodies to protobuf messages, and answers back to bytes.

The OTLP/HTTP rules live here, apart from the HTTP plumbing in ``recorder.collector``:
two encodings (binary protobuf, and OTLP/JSON whose ids are hex where protobuf's JSON
mapping expects base64), gzip and deflate bodies, chunked framing, and a size limit
that also holds after decompression. Every refusal is a ``RequestError`` carrying the
HTTP status the specification asks for.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from http.client import HTTPMessage
from typing import BinaryIO, Iterator, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

M = TypeVar("M", bound=Message)

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

# Where OTLP/JSON carries hex ids: the lists leading down from the request, then the id keys and byte sizes.
_SPAN_CONTEXT_IDS = {"traceId": 16, "spanId": 8}
_HEX_IDS = (
    (("resourceSpans", "scopeSpans", "spans"), {**_SPAN_CONTEXT_IDS, "parentSpanId": 8}),
    (("resourceSpans", "scopeSpans", "spans", "links"), _SPAN_CONTEXT_IDS),
    (("resourceLogs", "scopeLogs", "logRecords"), _SPAN_CONTEXT_IDS),
)
_HEX = re.compile(r"[0-9A-Fa-f]*")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(;[^\r\n]*)?\r?\n")
_LINE_LIMIT = 8192
_MAX_TRAILER_LINES = 100


class RequestError(Exception):
    """A refused request: ``status`` is the HTTP answer, the message says what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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


def body_length(headers: HTTPMessage) -> int | None:
    """The announced body size (0 when absent), or ``None`` for chunked, which overrides Content-Length."""
    coding = headers["Transfer-Encoding"]
    if coding is not None:
        if coding.strip().lower() != "chunked":  # RFC 9112 answers other transfer codings with 501
            raise RequestError(501, f"unsupported Transfer-Encoding {coding!r}; only chunked is")
        return None
    value = (headers["Content-Length"] or "0").strip()
    if not re.fullmatch(r"[0-9]+", value):
        raise RequestError(400, f"invalid Content-Length {value!r}")
    return int(value)


def read_body(stream: BinaryIO, headers: HTTPMessage, limit: int) -> bytes:
    """The body unchunked and inflated, refused with 413 once past ``limit`` as sent or as inflated."""
    length = body_length(headers)
    raw = read_chunked(stream, limit) if length is None else read_exactly(stream, length)
    return decompress(raw, content_coding(headers["Content-Encoding"]), limit)


def read_exactly(stream: BinaryIO, length: int) -> bytes:
    """``length`` bytes; fewer means the client hung up mid-body (a stalled one trips the socket timeout)."""
    data = stream.read(length)
    if len(data) < length:
        raise RequestError(400, f"the body ended after {len(data)} of its {length} announced bytes")
    return data


def read_chunked(stream: BinaryIO, limit: int) -> bytes:
    """A chunked body (the stdlib server leaves the framing to us), refused with 413 once past ``limit``."""
    body = bytearray()
    while size := _chunk_size(_read_line(stream)):
        if len(body) + size > limit:
            raise RequestError(413, f"the chunked body exceeds the {limit}-byte limit")
        body += read_exactly(stream, size)
        if _read_line(stream).strip():
            raise RequestError(400, "a chunk is not followed by CRLF")
    for _ in range(_MAX_TRAILER_LINES):  # trailer fields carry nothing OTLP needs
        if not _read_line(stream).strip():
            return bytes(body)
    raise RequestError(400, "too many trailer lines after the chunked body")


def _read_line(stream: BinaryIO) -> bytes:
    line = stream.readline(_LINE_LIMIT + 1)
    if not line.endswith(b"\n"):
        raise RequestError(400, "the chunked body ended early or has an over-long line")
    return line


def _chunk_size(line: bytes) -> int:
    match = _CHUNK_SIZE.fullmatch(line)
    if match is None:
        raise RequestError(400, f"invalid chunk size line {line[:40]!r}")
    return int(match[1], 16)


def decompress(body: bytes, coding: str, limit: int) -> bytes:
    """Inflate at most ``limit`` bytes: a gzip bomb is refused after ``limit`` bytes of work, not all of it."""
    if coding == "identity" or not body:
        return body
    out = bytearray()
    rest = body
    while rest:  # concatenated gzip members make one body, as gzip.decompress reads them
        inflater = zlib.decompressobj(wbits=_wbits(coding, rest))
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as error:
            raise RequestError(400, f"corrupt {coding} body: {error}") from None
        if len(out) > limit:
            raise RequestError(413, f"the body inflates past the {limit}-byte limit")
        if not inflater.eof:
            raise RequestError(400, f"truncated {coding} body")
        rest = inflater.unused_data
    return bytes(out)


def _wbits(coding: str, data: bytes) -> int:
    """gzip framing; for deflate the zlib wrapper HTTP means, or the raw deflate some clients send instead."""
    if coding == "gzip":
        return 16 + zlib.MAX_WBITS
    zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


def decode(body: bytes, media: str, message_type: type[M]) -> M:
    """Parse a decompressed body in either OTLP encoding; an empty body is an empty request."""
    if media == JSON:
        return _decode_json(body, message_type) if body else message_type()
    try:
        return message_type.FromString(body)
    except (DecodeError, RecursionError) as error:
        raise RequestError(400, f"cannot decode the protobuf {message_type.DESCRIPTOR.name}: {error}") from None


def _decode_json(body: bytes, message_type: type[M]) -> M:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise RequestError(400, f"cannot decode the body as JSON: {error}") from None
    if not isinstance(document, dict):
        raise RequestError(400, f"cannot decode the body: OTLP/JSON wants an object, not {type(document).__name__}")
    _hex_ids_to_base64(document)
    try:
        return json_format.ParseDict(document, message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, RecursionError) as error:
        raise RequestError(400, f"cannot decode the JSON as {message_type.DESCRIPTOR.name}: {error}") from None


def _hex_ids_to_base64(document: dict) -> None:
    """Rewrite OTLP/JSON's hex ids in place as the base64 that protobuf's JSON mapping reads for bytes."""
    for path, ids in _HEX_IDS:
        for holder in _objects_at(document, path):
            for name, size in ids.items():
                for key in _spellings(name):
                    if key in holder:
                        holder[key] = _hex_to_base64(holder[key], key, size)


def _objects_at(node: object, path: tuple[str, ...]) -> Iterator[dict]:
    """The objects reached by following ``path`` through lists; other shapes are left for ParseDict to refuse."""
    if not isinstance(node, dict):
        return
    if not path:
        yield node
        return
    for key in _spellings(path[0]):
        children = node.get(key)
        for child in children if isinstance(children, list) else ():
            yield from _objects_at(child, path[1:])


def _spellings(name: str) -> set[str]:
    """OTLP/JSON's lowerCamelCase key, and the proto field name that protobuf's parser accepts as well."""
    return {name, re.sub(r"[A-Z]", lambda upper: "_" + upper[0].lower(), name)}


def _hex_to_base64(value: object, key: str, size: int) -> object:
    if value is None:  # JSON null: the field's default, as protobuf's mapping reads it
        return value
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) not in (0, 2 * size):
        raise RequestError(400, f"{key} must be a {2 * size}-digit hex string in OTLP/JSON, not {value!r:.80}")
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def encode(message: Message, media: str) -> bytes:
    """An answer in the request's encoding: JSON for JSON requests, binary protobuf otherwise."""
    if media == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def status(http_status: int, message: str) -> status_pb2.Status:
    """The ``google.rpc.Status`` body OTLP/HTTP puts in every error answer."""
    return status_pb2.Status(code=_RPC_CODES.get(http_status, code_pb2.UNKNOWN), message=message)

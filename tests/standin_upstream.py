"""A stand-in for the real OpenAI, Anthropic and Cohere APIs on loopback, for live-recording tests.

It answers like the real APIs do in the ways that matter for scrubbing:
gzip bodies, cookies, organization and project headers, event streams (with
Anthropic's ``event:`` lines), binary audio. Anthropic's Messages API
(``/v1/messages``, streaming too) and Cohere's Rerank (``/v2/rerank``) are
told apart by path; every other path answers as OpenAI.
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAT_ANSWER = {
    "id": "chatcmpl-standin1",
    "object": "chat.completion",
    "created": 1760000000,
    "model": "gpt-4.1-nano-2025-04-14",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi from the stand-in.", "refusal": None,
                                 "annotations": []}, "logprobs": None, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
}

STREAM_EVENTS = [
    {"id": "chatcmpl-standin2", "object": "chat.completion.chunk", "created": 1760000000, "model": "gpt-4.1-nano",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
    {"id": "chatcmpl-standin2", "object": "chat.completion.chunk", "created": 1760000000, "model": "gpt-4.1-nano",
     "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]},
    {"id": "chatcmpl-standin2", "object": "chat.completion.chunk", "created": 1760000000, "model": "gpt-4.1-nano",
     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
]

ANTHROPIC_ANSWER = {
    "id": "msg_01Standin", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
    "content": [{"type": "text", "text": "Hi from the stand-in."}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 6},
}

ANTHROPIC_STREAM_EVENTS = [
    {"type": "message_start", "message": {**ANTHROPIC_ANSWER, "content": [], "stop_reason": None,
                                          "usage": {"input_tokens": 9, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 6}},
    {"type": "message_stop"},
]

RERANK_ANSWER = {
    "id": "standin-rerank-1",
    "results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}],
    "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
}

SPEECH_AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\xc0\x5d\x00\x00" + bytes(range(256))
"""Binary audio (a WAV header and bytes that are not UTF-8) for ``/v1/audio/speech``."""

PROVIDER_HEADERS = {
    "/v1/messages": {"Request-Id": "req_standin", "Anthropic-Organization-Id": "org-anthropicsecret",
                     "Anthropic-Ratelimit-Requests-Limit": "4000"},
    "/v2/rerank": {"X-Debug-Trace-Id": "standin-trace"},
}
"""Headers each provider's API adds (a secret among them); OpenAI's are ``TRACKING_HEADERS``."""

TRACKING_HEADERS = {
    "Set-Cookie": "__cf_bm=secretcookie; path=/; HttpOnly",
    "OpenAI-Organization": "org-standinsecret",
    "openai-project": "proj_standinsecret",
    "X-Request-Id": "req_standin",
    "Openai-Processing-Ms": "12",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.path, dict(self.headers.items()), body))
        if "multipart/" in (self.headers.get("Content-Type") or ""):
            return self._json({"text": "Hello world. This is a test."})
        if self.path == "/v1/audio/speech":
            return self._send(SPEECH_AUDIO, "audio/wav", gzip_it=False)
        if self.path == "/v2/rerank":
            return self._json(RERANK_ANSWER)
        streamed = json.loads(body).get("stream")
        if self.path == "/v1/messages":
            if not streamed:
                return self._json(ANTHROPIC_ANSWER)
            events = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in ANTHROPIC_STREAM_EVENTS)
            return self._send(events.encode(), "text/event-stream; charset=utf-8", gzip_it=False)
        if streamed:
            events = "".join(f"data: {json.dumps(e)}\n\n" for e in STREAM_EVENTS) + "data: [DONE]\n\n"
            return self._send(events.encode(), "text/event-stream; charset=utf-8", gzip_it=False)
        return self._json(CHAT_ANSWER)

    def _json(self, value: object) -> None:
        self._send(json.dumps(value, separators=(",", ":")).encode(), "application/json", gzip_it=True)

    def _send(self, payload: bytes, content_type: str, gzip_it: bool) -> None:
        if gzip_it:
            payload = gzip.compress(payload)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if gzip_it:
            self.send_header("Content-Encoding", "gzip")
        for key, value in PROVIDER_HEADERS.get(self.path, TRACKING_HEADERS).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


class StandinUpstream:
    """``with StandinUpstream() as upstream: upstream.url, upstream.received``"""

    def __enter__(self) -> StandinUpstream:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.received = []
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def received(self) -> list[tuple[str, dict[str, str], bytes]]:
        return self._server.received

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

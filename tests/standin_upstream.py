"""A stand-in for the real OpenAI API on loopback, for live-recording tests.

It answers like the real API does in the ways that matter for scrubbing:
gzip bodies, cookies, organization and project headers, event streams.
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
        if json.loads(body).get("stream"):
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
        for key, value in TRACKING_HEADERS.items():
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

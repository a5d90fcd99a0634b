"""Every connection of our loopback servers sends each write at once (TCP_NODELAY), on either parser.

With Nagle on, an event stream's second write waited for the client's delayed ACK: 40 ms per streamed
answer on a kept-alive connection (the proxy keeps its connection to the fake server alive).
"""

from __future__ import annotations

import socket

import httpx
import pytest

from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer
from testopeninference.recorder.loopback import H11LoopbackProtocol, HttpToolsLoopbackProtocol, LoopbackProtocol
from tests.helpers import CASSETTES


@pytest.mark.parametrize("parser", [HttpToolsLoopbackProtocol, H11LoopbackProtocol], ids=["httptools", "h11"])
def test_each_connection_has_nagle_off(parser):
    if parser is not H11LoopbackProtocol and LoopbackProtocol is not HttpToolsLoopbackProtocol:
        pytest.skip("httptools is not installed")
    seen: list[int] = []

    class Noting(parser):  # type: ignore[misc, valid-type]
        def connection_made(self, transport):
            super().connection_made(transport)
            seen.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = FakeOpenAIServer(CassetteReplayer(CassetteLibrary(CASSETTES)))
    server.protocol_class = Noting
    with server as running, httpx.Client(timeout=5) as client:
        assert client.get(f"{running.base_url}/v1/models").status_code == 200
    assert seen and all(seen)

"""The proxy answers a stream in its provider's own SSE shape, as a faithful gateway would.

Anthropic: ``event:``/``data:`` pairs from ``message_start`` to ``message_stop``, the cassette's event
sequence (but its keep-alive ``ping``, which the SDK does not hand on), no ``data: [DONE]``; the Anthropic SDK reads it through the proxy. OpenAI: ``data:`` lines ending
with ``data: [DONE]``, as before. A real proxy process, on loopback.
"""

from __future__ import annotations

import re
from typing import Iterator

import anthropic
import pytest

from testopeninference.recorder import request as proxy_request
from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.config import Settings
from testopeninference.recorder.fake_openai import CASSETTE_HEADER
from testopeninference.recorder.session import SpanRecorder
from tests.helpers import CASSETTES

LIBRARY = CassetteLibrary(CASSETTES)


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanRecorder]:
    spans = tmp_path_factory.mktemp("spans")
    with SpanRecorder(Settings(cassettes_dir=CASSETTES, spans_dir=spans)) as running:
        running.record("anthropic-messages-basic")  # starts the proxy, and the Anthropic SDK in it
        yield running


def _through_the_proxy(recorder: SpanRecorder, name: str) -> str:
    assert recorder._client is not None and recorder._proxy_url is not None  # noqa: SLF001
    reply = proxy_request.send(recorder._client, recorder._proxy_url, LIBRARY.load(name), None, 30)  # noqa: SLF001
    assert reply.status == 200, reply.body
    return reply.body


@pytest.mark.parametrize("name", ["anthropic-messages-streaming", "anthropic-messages-streaming-thinking"])
def test_anthropic_streams_come_back_in_anthropics_event_shape(recorder: SpanRecorder, name: str):
    body = _through_the_proxy(recorder, name)
    recorded = LIBRARY.load(name).interactions[0].response.body
    sent_on = [kind for kind in re.findall(r"^event: (\S+)$", recorded, re.M) if kind != "ping"]  # the SDK drops pings
    assert re.findall(r"^event: (\S+)$", body, re.M) == sent_on
    assert body.startswith("event: message_start\ndata: {") and "[DONE]" not in body
    assert body.rstrip().splitlines()[-2:] == ["event: message_stop", 'data: {"type":"message_stop"}']


def test_the_anthropic_sdk_reads_a_stream_through_the_proxy(recorder: SpanRecorder):
    name = "anthropic-messages-streaming"
    client = anthropic.Anthropic(base_url=recorder._proxy_url, api_key="unused", max_retries=0,  # noqa: SLF001
                                 default_headers={CASSETTE_HEADER: name})
    request = LIBRARY.load(name).request.json()
    assert isinstance(request, dict)
    with client.messages.stream(**{k: v for k, v in request.items() if k != "stream"}) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "One, two, three, four, five." and final.stop_reason == "end_turn"


def test_openai_streams_keep_data_lines_and_done(recorder: SpanRecorder):
    body = _through_the_proxy(recorder, "chat-streaming")
    assert "event:" not in body and body.rstrip().endswith("data: [DONE]")
    assert body.startswith("data: {")

"""A cassette's request as sent to a gateway: path prefix, adapt hook, unchanged bytes when unchanged."""

from __future__ import annotations

import dataclasses
import json

import pytest

from testopeninference.errors import ConfigurationError
from testopeninference.gateway_request import content_of, prefix_model, request_of
from testopeninference.recorder.cassette import CassetteLibrary
from tests.helpers import CASSETTES

CHAT = CassetteLibrary(CASSETTES).load("chat-basic")


def test_the_path_prefix_goes_before_the_cassettes_path():
    request = request_of(CHAT, "/openai/", {"traceparent": "x"})
    assert request.path == "/openai/v1/chat/completions"
    assert request.headers == {"X-Cassette-Name": "chat-basic", "traceparent": "x"}


def test_an_unchanged_body_is_sent_as_recorded_and_a_changed_one_as_json():
    request = request_of(CHAT, "", {})
    assert content_of(request, CHAT) == CHAT.request.body.encode()
    renamed = prefix_model("gw::")(request)
    assert renamed.body["model"] == f"gw::{CHAT.request.json()['model']}"
    assert json.loads(content_of(renamed, CHAT)) == renamed.body


def test_prefix_model_leaves_requests_without_a_model_alone():
    request = dataclasses.replace(request_of(CHAT, "", {}), body=None, multipart=True)
    assert prefix_model("gw::")(request) is request


def test_a_path_prefix_without_a_slash_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="path_prefix 'openai' must start with '/'"):
        request_of(CHAT, "openai", {})

import gzip
import zlib

import pytest

from testopeninference.recorder.scrub import decode_body, pretty_json, scrub_headers, scrub_secrets, scrub_url


def test_secret_and_tracking_headers_are_removed_case_insensitively():
    headers = {
        "AUTHORIZATION": ["Bearer sk-x"],
        "Api-Key": ["k"],
        "openai-organization": ["org-x"],
        "OpenAI-Project": ["proj_x"],
        "Cookie": ["a=b"],
        "set-cookie": ["c=d"],
        "Traceparent": ["00-..."],
        "X-B3-TraceId": ["1"],
        "b3": ["1-2"],
        "Content-Type": ["application/json"],
        "X-Request-Id": ["req_1"],
    }
    assert scrub_headers(headers) == {"Content-Type": ["application/json"], "X-Request-Id": ["req_1"]}


@pytest.mark.parametrize(
    ("encoding", "encode"), [("gzip", gzip.compress), ("GZIP", gzip.compress), ("deflate", zlib.compress), ("", bytes)]
)
def test_bodies_are_decoded(encoding, encode):
    assert decode_body(encode(b'{"a": 1}'), encoding) == b'{"a": 1}'


def test_json_is_pretty_printed_with_sorted_keys_and_other_text_kept():
    assert pretty_json('{"b":1,"a":"é"}') == '{\n  "a": "é",\n  "b": 1\n}'
    assert pretty_json("data: {}\n\n") == "data: {}\n\n"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://contoso-eastus.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=1",
         "https://resource-name.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=1"),
        ("https://contoso.cognitiveservices.azure.com/openai/x", "https://resource-name.cognitiveservices.azure.com/openai/x"),
        ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
        ("http://127.0.0.1:8080/v1/embeddings", "http://127.0.0.1:8080/v1/embeddings"),
    ],
)
def test_azure_resource_names_are_replaced(url, expected):
    assert scrub_url(url) == expected


def test_secret_values_are_redacted_from_text():
    assert scrub_secrets("key sk-abc in body", ["sk-abc", ""]) == "key REDACTED in body"


def test_anthropic_and_cohere_keys_are_removed():
    headers = {
        "X-Api-Key": ["sk-ant-api03-secret"],
        "Anthropic-Organization-Id": ["5b2e1c3a-0000-4000-8000-000000000000"],
        "Authorization": ["Bearer cohere-secret"],
        "Anthropic-Version": ["2023-06-01"],
    }
    assert scrub_headers(headers) == {"Anthropic-Version": ["2023-06-01"]}

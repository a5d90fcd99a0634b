"""What each convention's goldens hold: message content as span attributes, or as events (log records)."""

from __future__ import annotations

import json
import re

import pytest

import openai_proxy
from testopeninference.recorder.cassette import CassetteLibrary
from testopeninference.recorder.conventions import CONVENTIONS, get_convention
from testopeninference.recorder.span_file import read_logs
from testopeninference import get_log_records, get_span
from testopeninference.catalogue import endpoint_of
from tests.helpers import CASSETTES, SPANS

LIBRARY = CassetteLibrary(CASSETTES)
# Message content: the current GenAI attributes, and OpenLLMetry's older indexed ones.
CONTENT_ATTRIBUTE = re.compile(r"^gen_ai\.(input|output)\.messages$|^gen_ai\.(prompt|completion)\.\d+\.")
CHAT_PROMPT_CASSETTES = ["chat-basic", "chat-multiturn", "chat-tools", "azure-chat-basic"]
GENAI = [c for c in CONVENTIONS.values() if c.name != "openinference"]


def prompt_of(cassette: str) -> str:
    return LIBRARY.load(cassette).request.json()["messages"][-1]["content"]


def content_keys(span) -> set[str]:
    return {a.key for a in span.attributes if CONTENT_ATTRIBUTE.match(a.key)}


def test_the_proxy_and_the_recorder_know_the_same_conventions():
    assert set(openai_proxy.INSTRUMENTATIONS) == set(CONVENTIONS)


@pytest.mark.parametrize("convention", [c.name for c in GENAI if not c.emits_events])
@pytest.mark.parametrize("cassette", CHAT_PROMPT_CASSETTES)
def test_attribute_mode_puts_content_on_the_span(convention: str, cassette: str):
    span = get_span(cassette, convention=convention)
    assert {"gen_ai.input.messages", "gen_ai.output.messages"} <= content_keys(span)
    attribute = next(a for a in span.attributes if a.key == "gen_ai.input.messages")
    assert prompt_of(cassette) in attribute.value.string_value.encode().decode("unicode_escape", "ignore") or prompt_of(cassette) in json.dumps(json.loads(attribute.value.string_value), ensure_ascii=False)
    assert not get_convention(convention).logs_path(SPANS, cassette).exists()


@pytest.mark.parametrize("convention", [c.name for c in GENAI if c.emits_events])
@pytest.mark.parametrize("cassette", CHAT_PROMPT_CASSETTES)
def test_event_mode_puts_content_in_events_not_on_the_span(convention: str, cassette: str):
    span = get_span(cassette, convention=convention)
    assert content_keys(span) == set()
    records = get_log_records(cassette, convention=convention)
    assert records, "an event-mode golden has events"
    text = json.dumps([json.loads(read_json(record)) for record in records], ensure_ascii=False)
    assert prompt_of(cassette) in text  # e.g. a user-message event carrying the prompt


def read_json(record) -> str:
    from google.protobuf import json_format

    return json_format.MessageToJson(record)


def test_openllmetry_events_name_each_message():
    records = get_log_records("chat-basic", convention="openllmetry-events")
    assert [r.event_name for r in records] == ["gen_ai.user.message", "gen_ai.choice"]


def test_otel_genai_events_carry_the_inference_details():
    records = get_log_records("chat-basic", convention="otel-genai-events")
    assert [r.event_name for r in records] == ["gen_ai.client.inference.operation.details"]


def test_log_record_goldens_are_plain_logs_data_with_volatile_fields_cleared():
    for convention in (c for c in GENAI if c.emits_events):
        for path in (SPANS / convention.spans_subdir).glob("*.logs.json"):
            endpoint = endpoint_of(LIBRARY.load(path.name.removesuffix(".logs.json")))
            for resource_logs in read_logs(path).resource_logs:
                for scope_logs in resource_logs.scope_logs:
                    assert scope_logs.scope.name == convention.scope_for(endpoint)  # its provider's scope
                    for record in scope_logs.log_records:
                        assert not (record.trace_id or record.span_id or record.time_unix_nano
                                    or record.observed_time_unix_nano), path


def test_no_golden_holds_a_run_dependent_port():
    for path in SPANS.rglob("*.json"):
        text = path.read_text()
        assert "127.0.0.1:<port>" in text or "127.0.0.1:" not in text, path


@pytest.mark.parametrize("convention", [c.name for c in GENAI])
def test_uncovered_cassettes_have_no_golden_file(convention: str):
    chosen = get_convention(convention)
    for name in LIBRARY.names():
        if chosen.why_not_covered(name, endpoint_of(LIBRARY.load(name))):
            assert not chosen.span_path(SPANS, name).exists(), name


def test_log_records_of_an_attribute_convention_are_refused():
    with pytest.raises(ValueError, match="puts message content in span attributes and has no golden log records"):
        get_log_records("chat-basic", convention="otel-genai")


def test_a_missing_log_records_file_is_named(tmp_path):
    import shutil

    from testopeninference.errors import GoldenSpanMissingError

    shutil.copytree(SPANS / "otel-genai-events", tmp_path / "otel-genai-events")
    (tmp_path / "otel-genai-events" / "chat-basic.logs.json").unlink()
    with pytest.raises(GoldenSpanMissingError, match="chat-basic.logs.json are missing though their span exists"):
        get_log_records("chat-basic", convention="otel-genai-events", spans_dir=tmp_path)

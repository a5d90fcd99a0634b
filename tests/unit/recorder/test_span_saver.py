"""``serve --save-spans``: file names from trace id and span name, never clashing, never replacing a file."""

from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.span_file import read_span
from testopeninference.recorder.span_saver import SpanSaver, file_name_part


@pytest.mark.parametrize(
    ("name", "part"),
    [("ChatCompletion", "ChatCompletion"), ("POST /v1/chat", "POST_v1_chat"), ("../../etc", "_.._etc"),
     ("", "span"), ("...", "span"), ("x" * 300, "x" * 100), ("héllo wörld", "h_llo_w_rld")],
)
def test_a_span_name_becomes_a_safe_file_name_part(name, part):
    assert file_name_part(name) == part


def test_spans_of_one_trace_and_name_get_numbered_names_and_an_existing_file_is_kept(tmp_path: Path):
    saver = SpanSaver(tmp_path / "made")
    span = Span(trace_id=b"\xab" * 16, span_id=b"\x01" * 8, name="POST /v1/chat")
    (tmp_path / "made" / f"{'ab' * 16}-POST_v1_chat-2.json").write_text("mine")
    paths = [saver.save(span) for _ in range(3)]
    assert [path.name for path in paths] == [f"{'ab' * 16}-POST_v1_chat{suffix}.json" for suffix in ("", "-3", "-4")]
    assert (tmp_path / "made" / f"{'ab' * 16}-POST_v1_chat-2.json").read_text() == "mine"
    assert read_span(paths[0]) == span
    assert saver.save(Span(name="no ids")).name == "no-trace-id-no_ids.json"

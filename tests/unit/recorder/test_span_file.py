from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder import atomic
from testopeninference.recorder.span_file import from_json, normalise, read_logs, read_span, to_json, write_span
from testopeninference.errors import InvalidGoldenSpanError
from tests.helpers import SPANS, need_reference


def volatile_span() -> Span:
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, parent_span_id=b"\x03" * 8, name="ChatCompletion")
    span.start_time_unix_nano, span.end_time_unix_nano, span.flags = 1, 2, 256
    event = span.events.add(name="exception", time_unix_nano=3)
    event.attributes.add(key="exception.stacktrace").value.string_value = (
        'Traceback:\n  File "/home/me/.venv/lib/python3.11/site-packages/openai/_base_client.py", line 1\n'
    )
    span.links.add(trace_id=b"\x04" * 16, span_id=b"\x05" * 8)
    return span


def test_normalise_clears_volatile_fields_and_machine_paths():
    clean = normalise(volatile_span())
    assert clean.trace_id == clean.span_id == clean.parent_span_id == b""
    assert clean.start_time_unix_nano == clean.end_time_unix_nano == 0
    assert clean.events[0].time_unix_nano == 0
    assert clean.links[0].trace_id == clean.links[0].span_id == b""
    assert clean.flags == 256 and clean.name == "ChatCompletion"
    assert 'File "site-packages/openai/_base_client.py"' in clean.events[0].attributes[0].value.string_value


def test_protojson_form_matches_go_declaration_order():
    text = to_json(normalise(volatile_span()))
    assert text.startswith('{\n  "flags": 256,\n  "name": "ChatCompletion",')
    assert text.endswith("}\n")


def test_reference_goldens_round_trip():
    reference = need_reference()
    for path in sorted((reference / "spans").glob("*.json")):
        text = path.read_text()
        span = read_span(path)
        assert from_json(to_json(span)) == span
        if '":  ' not in text:  # Go sometimes writes two spaces after a colon
            assert to_json(span) == text, path.name


def test_project_goldens_are_canonical():
    """Every golden of every convention, log records too, is exactly what ``to_json`` (Go's form) writes."""
    paths = sorted(SPANS.rglob("*.json"))
    assert len(paths) > 200
    for path in paths:
        message = read_logs(path) if path.name.endswith(".logs.json") else read_span(path)
        assert to_json(message) == path.read_text(), path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "x", ', "is not valid JSON"),
        ("[1, 2]", "is JSON but not an OpenTelemetry Span"),
        ('{"name": "x", "kind": "NOT_A_KIND"}', "is JSON but not an OpenTelemetry Span"),
    ],
)
def test_bad_goldens_name_the_file(text: str, message: str, tmp_path: Path):
    path = tmp_path / "chat-basic.json"
    path.write_text(text)
    with pytest.raises(InvalidGoldenSpanError, match=message) as raised:
        read_span(path)
    assert str(path) in str(raised.value) and "testopeninference record --force" in str(raised.value)


def test_write_is_atomic_and_leaves_nothing_on_failure(tmp_path: Path, monkeypatch):
    path = tmp_path / "spans" / "chat-basic.json"
    write_span(path, Span(name="first"))
    assert read_span(path).name == "first"

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_span(path, Span(name="second"))
    assert read_span(path).name == "first"
    assert [p.name for p in path.parent.iterdir()] == ["chat-basic.json"]


def test_written_file_is_not_world_writable(tmp_path: Path):
    path = tmp_path / "x.json"
    write_span(path, Span(name="x"))
    assert path.stat().st_mode & 0o002 == 0
    assert json_format.Parse(path.read_text(), Span()).name == "x"


def test_a_group_write_that_fails_midway_puts_every_file_back(tmp_path: Path, monkeypatch):
    import testopeninference.recorder.atomic as atomic

    first, second = tmp_path / "a.json", tmp_path / "b.yaml"
    second.write_text("old")
    real_replace = atomic.os.replace
    calls = []

    def fail_on_second(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", fail_on_second)
    with pytest.raises(OSError, match="No space left"):
        atomic.write_atomic_group({first: "new", second: "new"})
    assert not first.exists() and second.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.yaml"]


# What Go's protojson (internal/encoding/json appendFloat, 64 bits) writes for each double.
GO_DOUBLES = [
    (0.0, "0"), (-0.0, "-0"), (1e21, "1e+21"), (1e20, "100000000000000000000"), (1e-7, "1e-7"),
    (1e-6, "0.000001"), (0.1, "0.1"), (123456789.125, "123456789.125"), (100.0, "100"), (3.5, "3.5"),
    (-1.5e-7, "-1.5e-7"), (1.5e-10, "1.5e-10"), (1.234e-6, "0.000001234"), (9.999999999999999e20, "999999999999999900000"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"), (0.06246566399931908, "0.06246566399931908"),
    (float("nan"), '"NaN"'), (float("inf"), '"Infinity"'), (float("-inf"), '"-Infinity"'),
]


@pytest.mark.parametrize(("number", "go"), GO_DOUBLES, ids=[go for _, go in GO_DOUBLES])
def test_doubles_are_written_as_go_protojson_writes_them(number: float, go: str):
    from testopeninference.recorder.span_file import go_float

    assert go_float(number) == go


def test_a_span_with_tricky_numbers_is_byte_for_byte_gos_multiline_protojson():
    span = Span(name="n", flags=256)
    for key, value in [("zero", 0.0), ("minus-zero", -0.0), ("big", 1e21), ("tiny", 1e-7), ("nan", float("nan"))]:
        span.attributes.add(key=key).value.double_value = value
    span.attributes.add(key="int64").value.int_value = 9007199254740993
    span.attributes.add(key="text").value.string_value = 'a "q" \\ \n\t\x01 é <&>'
    keys = ["zero", "minus-zero", "big", "tiny", "nan"]
    values = ["0", "-0", "1e+21", "1e-7", '"NaN"']
    doubles = "".join(
        f'    {{\n      "key": "{key}",\n      "value": {{\n        "doubleValue": {value}\n      }}\n    }},\n'
        for key, value in zip(keys, values)
    )
    assert to_json(span) == (
        '{\n  "flags": 256,\n  "name": "n",\n  "attributes": [\n' + doubles +
        '    {\n      "key": "int64",\n      "value": {\n        "intValue": "9007199254740993"\n      }\n    },\n'
        '    {\n      "key": "text",\n      "value": {\n'
        '        "stringValue": "a \\"q\\" \\\\ \\n\\t\\u0001 é <&>"\n      }\n    }\n  ]\n}\n'
    )
    assert from_json(to_json(span)).attributes[1].value.double_value == 0.0

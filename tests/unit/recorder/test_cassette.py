from pathlib import Path

import pytest

from testopeninference.recorder.cassette import CassetteLibrary, load_cassette, validate_name
from testopeninference.errors import CassetteNotFoundError, InvalidCassetteError
from tests.helpers import CASSETTES, need_reference


def test_loads_first_interaction_request():
    cassette = load_cassette(CASSETTES / "chat-basic.yaml")
    assert cassette.name == "chat-basic"
    assert cassette.request.method == "POST"
    assert cassette.request.path == "/v1/chat/completions"
    assert cassette.request.json()["model"]
    assert cassette.interactions[0].response.code == 200


def test_streaming_response_is_an_event_stream():
    assert load_cassette(CASSETTES / "chat-streaming.yaml").interactions[0].response.is_event_stream


def test_azure_query_is_kept_apart_from_path():
    request = load_cassette(CASSETTES / "azure-chat-basic.yaml").request
    assert request.path.startswith("/openai/deployments/")
    assert "api-version=" in request.query


def test_multipart_form_names_fields_and_files():
    cassette = load_cassette(CASSETTES / "audio-transcription-basic.yaml")
    assert cassette.request.is_multipart
    assert cassette.form_fields()["model"] == "whisper-1"
    assert cassette.form_files()["file"].is_file()


def test_reference_audio_cassette_gets_its_known_form():
    reference = need_reference()
    cassette = load_cassette(reference / "cassettes" / "audio-transcription-basic.yaml")
    assert cassette.form_fields() == {"model": "whisper-1", "language": "en", "response_format": "json"}
    assert cassette.form_files()["file"] == reference / "testdata" / "sunrise_fact.wav"


def test_malformed_yaml_names_file_and_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("version: 2\ninteractions:\n  - id: 0\n    request: [unclosed\n")
    with pytest.raises(InvalidCassetteError, match=r"broken\.yaml:\d+: malformed cassette YAML"):
        load_cassette(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\ninteractions: []\n", "has no interactions"),
        ("version: 1\ninteractions: []\n", "format version 1 is not supported"),
        ("- just a list\n", "must be a YAML mapping"),
        ("version: 2\ninteractions:\n  - id: 0\n", "malformed interaction"),
    ],
)
def test_invalid_cassettes_say_what_is_wrong(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidCassetteError, match=message):
        load_cassette(path)


def test_unknown_cassette_suggests_close_names():
    with pytest.raises(CassetteNotFoundError, match="Did you mean: chat-basic"):
        CassetteLibrary(CASSETTES).load("chat-basik")


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "..", "", "x\\y"])
def test_names_that_escape_the_directory_are_refused(name: str):
    with pytest.raises(InvalidCassetteError, match="invalid cassette name"):
        validate_name(name)


def test_library_lists_names_sorted():
    names = CassetteLibrary(CASSETTES).names()
    assert names == sorted(names) and "chat-basic" in names


@pytest.mark.parametrize("name", ["chat-basic\n", "chat-basic\n.yaml", "c" * 201])
def test_names_with_a_trailing_newline_or_over_200_characters_are_refused(name: str):
    with pytest.raises(InvalidCassetteError, match="invalid cassette name"):
        validate_name(name)


def test_a_name_of_200_characters_is_accepted():
    assert validate_name("c" * 200) == "c" * 200


@pytest.mark.parametrize("loader", ["AliasRefusingSafeLoader", "CSafeLoader"])
def test_aliases_are_refused_whichever_loader_parses(loader: str, monkeypatch):
    import yaml

    import testopeninference.recorder.safe_yaml as safe_yaml

    chosen = getattr(safe_yaml, loader, None) or getattr(yaml, loader, None)
    if chosen is None:
        pytest.skip("PyYAML without its C extension")
    monkeypatch.setattr(safe_yaml, "LOADER", chosen)
    with pytest.raises(safe_yaml.AliasRefusedError) as raised:
        safe_yaml.load_yaml("a: 1\nb: &x [1]\nc: *x\n")
    assert raised.value.problem == "YAML anchor '&x' is not allowed" and raised.value.problem_mark.line == 1
    assert safe_yaml.load_yaml("a: [1, 2]\n") == {"a": [1, 2]}


def test_binary_body_is_stored_as_base64_and_read_as_bytes():
    response = load_cassette(CASSETTES / "audio-speech-basic.yaml").interactions[0].response
    assert response.body_encoding == "base64"
    audio = response.body_bytes()
    assert audio[:4] == b"RIFF" and len(audio) == int(response.headers["Content-Length"][0])


def _binary_cassette(tmp_path: Path, body: str, encoding: str) -> Path:
    text = (CASSETTES / "audio-speech-basic.yaml").read_text()
    start = text.index("        body: |-\n            UklG")
    end = text.index("        body_encoding: base64\n")
    path = tmp_path / "speech.yaml"
    path.write_text(text[:start] + f"        body: {body}\n        body_encoding: {encoding}\n" + text[end + 30:])
    return path


@pytest.mark.parametrize(("body", "encoding", "message"), [
    ("not*base64", "base64", "the response body is marked body_encoding: base64 but is not base64"),
    ("QUJD", "hex", "unknown response body_encoding 'hex'"),
])
def test_a_bad_binary_body_names_the_file(tmp_path: Path, body: str, encoding: str, message: str):
    path = _binary_cassette(tmp_path, body, encoding)
    with pytest.raises(InvalidCassetteError, match=message) as raised:
        load_cassette(path)
    assert str(path) in str(raised.value)

"""Cassettes: recorded OpenAI HTTP interactions in go-vcr's format (``version: 2``).

A cassette is self-describing: the request to replay is its first
interaction's request. Multipart bodies (audio) are stored as a placeholder,
so the request's ``form`` mapping (a go-vcr field) names the form fields; a
value starting with ``@`` names a file in ``testdata/`` beside or inside the
cassettes directory. Cassettes recorded by the reference harness carry no
``form``; ``REFERENCE_MULTIPART_FORMS`` supplies theirs.

A binary response body (audio) is stored as base64 text, with the response's
``body_encoding: base64`` saying so: go-vcr reads ``body`` as a string and
ignores the extra key, and the fake server sends the decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any
import difflib
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from testopeninference.recorder.file_cache import cached
from testopeninference.recorder.safe_yaml import load_yaml
from testopeninference.errors import AliasRefusedError, CassetteNotFoundError, InvalidCassetteError

CASSETTE_FORMAT_VERSION = 2
MULTIPART_PLACEHOLDER = "[multipart form data omitted]"
FILE_PREFIX = "@"
BASE64_BODY = "base64"
"""The ``body_encoding`` of a response whose body is binary, stored as base64 text."""

REFERENCE_MULTIPART_FORMS: dict[str, dict[str, list[str]]] = {
    "audio-transcription-basic": {
        "file": ["@sunrise_fact.wav"],
        "model": ["whisper-1"],
        "language": ["en"],
        "response_format": ["json"],
    },
    "audio-translation-basic": {
        "file": ["@sunrise_fact.wav"],
        "model": ["whisper-1"],
        "response_format": ["json"],
    },
}
"""Form fields of the reference harness's audio cassettes, which omit them."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME_LENGTH = 200
"""Longer names are refused up front: with a suffix they would pass most file systems' 255-byte limit."""


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    url: str
    headers: dict[str, list[str]]
    body: str
    form: dict[str, list[str]]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> str:
        return urlsplit(self.url).query

    @property
    def is_multipart(self) -> bool:
        return header(self.headers, "content-type").startswith("multipart/") or self.body == MULTIPART_PLACEHOLDER

    def json(self) -> object:
        """The JSON body (``None`` for an empty body)."""
        return json.loads(self.body) if self.body.strip() else None


@dataclasses.dataclass(frozen=True)
class RecordedResponse:
    code: int
    status: str
    headers: dict[str, list[str]]
    body: str
    body_encoding: str = ""  # "base64": ``body`` holds binary bytes as base64 text

    @property
    def is_event_stream(self) -> bool:
        return header(self.headers, "content-type").startswith("text/event-stream")

    def body_bytes(self) -> bytes:
        """The body as sent on the wire (base64 decoded for a binary body)."""
        if self.body_encoding == BASE64_BODY:
            return base64.b64decode("".join(self.body.split()), validate=True)
        return self.body.encode()


@dataclasses.dataclass(frozen=True)
class Interaction:
    request: RecordedRequest
    response: RecordedResponse


@dataclasses.dataclass(frozen=True)
class Cassette:
    name: str
    path: Path
    interactions: tuple[Interaction, ...]
    description: str = ""  # one line: the request shape it exercises (a top-level key go-vcr ignores)

    @property
    def request(self) -> RecordedRequest:
        """The request this cassette replays: the first interaction's."""
        return self.interactions[0].request

    def form_fields(self) -> dict[str, str]:
        """Multipart text fields (first value of each), files excluded."""
        form = self.request.form or REFERENCE_MULTIPART_FORMS.get(self.name, {})
        return {key: values[0] for key, values in form.items() if values and not values[0].startswith(FILE_PREFIX)}

    def form_files(self) -> dict[str, Path]:
        """Multipart file fields, resolved to the files in ``testdata/``."""
        form = self.request.form or REFERENCE_MULTIPART_FORMS.get(self.name, {})
        files = {}
        for key, values in form.items():
            if values and values[0].startswith(FILE_PREFIX):
                files[key] = self._testdata_file(values[0][len(FILE_PREFIX) :])
        return files

    def _testdata_file(self, filename: str) -> Path:
        folder = self.path.parent
        candidates = [folder / "testdata" / filename, folder.parent / "testdata" / filename]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        looked = ", ".join(str(c) for c in candidates)
        raise InvalidCassetteError(f"{self.path}: form file {filename!r} not found (looked in {looked}); add it there.")


def header(headers: dict[str, list[str]], name: str) -> str:
    """First value of a header, matched case-insensitively ('' when absent)."""
    for key, values in headers.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return ""


def validate_name(name: str) -> str:
    """Refuse names that could escape the cassettes directory, or that no file system would take."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidCassetteError(
            f"invalid cassette name {name[:40]!r}... ({len(name)} characters): use at most {MAX_NAME_LENGTH}."
        )
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidCassetteError(
            f"invalid cassette name {name!r}: use letters, digits, '.', '_' and '-' only (no path separators or '..')."
        )
    return name


def load_cassette(path: Path) -> Cassette:
    """Read and validate one cassette file, parsed once while it is unchanged (``recorder.file_cache``).

    A ``Cassette`` is shared by every caller: treat it as read-only.
    """
    return cached(_read_cassette, Path(path))


def _read_cassette(path: Path) -> Cassette:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CassetteNotFoundError(f"cassette file {path} does not exist.") from None
    except UnicodeDecodeError as error:
        raise InvalidCassetteError(
            f"{path}: not UTF-8 text (byte {error.start}: {error.reason}); a cassette is UTF-8 YAML."
        ) from None
    except OSError as error:  # a directory, a name too long, no permission
        raise InvalidCassetteError(f"{path}: cannot read the cassette ({error.strerror or error}).") from None
    try:
        data = load_yaml(text)
    except RecursionError:
        raise InvalidCassetteError(f"{path}: the cassette YAML is nested too deeply to read.") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error)
        if isinstance(error, AliasRefusedError):
            raise InvalidCassetteError(
                f"{where}: {problem} in a cassette (aliases can expand without bound); write the value out in full."
            ) from None
        raise InvalidCassetteError(f"{where}: malformed cassette YAML ({problem}); fix or delete the file.") from None
    return _parse(path, data)


def _parse(path: Path, data: object) -> Cassette:
    if not isinstance(data, dict):
        raise InvalidCassetteError(f"{path}: a cassette must be a YAML mapping with 'version' and 'interactions'.")
    if data.get("version") != CASSETTE_FORMAT_VERSION:
        raise InvalidCassetteError(
            f"{path}: cassette format version {data.get('version')!r} is not supported "
            f"(expected {CASSETTE_FORMAT_VERSION}, go-vcr's format); re-record the cassette."
        )
    raw = data.get("interactions")
    if not isinstance(raw, list) or not raw:
        raise InvalidCassetteError(f"{path}: the cassette has no interactions; re-record it or delete it.")
    try:
        interactions = tuple(_interaction(item) for item in raw)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidCassetteError(f"{path}: malformed interaction ({error!r}); fix or re-record the cassette.") from None
    _check_json_bodies(path, interactions)
    _check_binary_bodies(path, interactions)
    description = " ".join(str(data.get("description") or "").split())
    return Cassette(name=path.stem, path=path, interactions=interactions, description=description)


def _check_json_bodies(path: Path, interactions: tuple[Interaction, ...]) -> None:
    """A request body too deeply nested to parse fails here, naming the file, not later inside a matcher."""
    for interaction in interactions:
        try:
            interaction.request.json()
        except ValueError:
            pass  # not JSON: matched as text
        except RecursionError:
            raise InvalidCassetteError(
                f"{path}: the request body's JSON is nested too deeply to read; fix or re-record the cassette."
            ) from None


def _check_binary_bodies(path: Path, interactions: tuple[Interaction, ...]) -> None:
    """A binary body that is not base64 fails on load, naming the file, not later on the wire."""
    for interaction in interactions:
        try:
            interaction.response.body_bytes()
        except (binascii.Error, ValueError) as error:
            raise InvalidCassetteError(
                f"{path}: the response body is marked body_encoding: base64 but is not base64 ({error}); "
                "fix or re-record the cassette."
            ) from None


def _interaction(item: dict[str, Any]) -> Interaction:
    request, response = item["request"], item["response"]
    return Interaction(
        request=RecordedRequest(
            method=str(request["method"]).upper(),
            url=str(request["url"]),
            headers=_headers(request.get("headers")),
            body=str(request.get("body") or ""),
            form=_headers(request.get("form")),
        ),
        response=RecordedResponse(
            code=int(response["code"]),
            status=str(response.get("status") or ""),
            headers=_headers(response.get("headers")),
            body=str(response.get("body") or ""),
            body_encoding=_body_encoding(response.get("body_encoding")),
        ),
    )


def _body_encoding(raw: object) -> str:
    if raw in (None, ""):
        return ""
    if raw != BASE64_BODY:
        raise ValueError(f"unknown response body_encoding {raw!r} (only {BASE64_BODY!r})")
    return BASE64_BODY


def _headers(raw: object) -> dict[str, list[str]]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise TypeError(f"expected a mapping of lists, got {type(raw).__name__}")
    return {str(key): [str(v) for v in (values if isinstance(values, list) else [values])] for key, values in raw.items()}


class _CassetteDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so bodies stay readable in the file."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CassetteDumper.add_representer(str, _represent_str)


def dump_cassette(data: dict[str, Any]) -> str:
    """A cassette mapping as go-vcr-compatible YAML text (keys in the given order)."""
    return yaml.dump(
        data, Dumper=_CassetteDumper, explicit_start=True, sort_keys=False, allow_unicode=True, indent=4, width=120
    )


class CassetteLibrary:
    """The cassettes of one or more directories, by name, each parsed once while its file is unchanged.

    The first directory is the user's own (new cassettes are saved there); later ones, such as the
    packaged library, are looked up after it, so a name found earlier wins.
    """

    def __init__(self, directory: Path, *more: Path) -> None:
        self.directories = tuple(Path(d) for d in (directory, *more))
        self.directory = self.directories[0]

    def names(self) -> list[str]:
        """All cassette names, sorted."""
        return sorted({path.stem for folder in self.directories if folder.is_dir() for path in folder.glob("*.yaml")})

    def path(self, name: str) -> Path:
        """The file a name stands for: the first directory holding it (the user's, when none does)."""
        filename = f"{validate_name(name)}.yaml"
        for folder in self.directories:
            candidate = folder / filename
            if candidate.exists():
                return candidate
        return self.directory / filename

    def load(self, name: str) -> Cassette:
        """The named cassette; an unknown name suggests close ones."""
        path = self.path(name)
        if path.is_dir():
            raise InvalidCassetteError(f"{path} is a directory, not a cassette file; remove or rename it.")
        if not path.is_file():
            raise CassetteNotFoundError(self.unknown_message(name))
        return load_cassette(path)

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        looked = " or ".join(str(folder / (name + ".yaml")) for folder in self.directories)
        return f"unknown cassette {name!r}: no file {looked}.{hint}"

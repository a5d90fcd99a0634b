"""Settings, read once (argument, then environment variable, then default).

Nothing else in the project reads the environment: callers build a
``Settings`` with ``Settings.from_env()`` and pass it down, overriding single
fields with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from testopeninference.errors import ConfigurationError
from testopeninference.recorder import resources
from testopeninference.recorder.project_config import project_settings

if TYPE_CHECKING:  # loopback imports uvicorn: not for every reader of the settings
    from testopeninference.recorder.loopback import ConnectionLimits


RECORD_SPANS = "RECORD_SPANS"
"""``false`` (default): never record; ``true``: record missing goldens; ``all``: re-record every golden used."""

RECORD_BACKEND = "RECORD_BACKEND"
"""Which backend runs the proxy: ``local`` (default), ``docker``, or ``auto`` (Docker when an engine answers)."""

CONVENTION = "TESTOPENINFERENCE_CONVENTION"
"""Which instrumentation convention's goldens to use and record (default ``openinference``)."""

DOCKER_BASE_IMAGE = "TESTOPENINFERENCE_DOCKER_BASE_IMAGE"
"""Base image of the proxy image (default ``python:3.13-slim``); any image with python3 and venv."""

DOCKER_WHEELHOUSE = "TESTOPENINFERENCE_DOCKER_WHEELHOUSE"
"""Directory of wheels for requirements.txt: the image is then built with no network."""

CASSETTES_DIR = "TESTOPENINFERENCE_CASSETTES_DIR"
"""Directory of ``<name>.yaml`` cassettes (default: the project's ``cassettes/``)."""

SPANS_DIR = "TESTOPENINFERENCE_SPANS_DIR"
"""Directory of golden ``<name>.json`` spans (default: the project's ``spans/``)."""

SPAN_TIMEOUT = "TESTOPENINFERENCE_SPAN_TIMEOUT"
"""Seconds to wait for a request and its span (default 30)."""

LIBRARY = "TESTOPENINFERENCE_LIBRARY"
"""``false`` uses only your own cassettes and goldens, not the packaged library beside them (default ``true``)."""

PROXY_ENV = "TESTOPENINFERENCE_PROXY_ENV"
"""Where the local backend's proxy runs: ``auto`` (default: this environment when it holds exactly the pins,
else the proxy's own cached virtualenv), ``isolated`` (always its own virtualenv) or ``current`` (this one)."""

CACHE_DIR = "TESTOPENINFERENCE_CACHE_DIR"
"""Where the proxy's virtualenvs are kept (default: the user cache directory, ``~/.cache/testopeninference``)."""

ALLOW_VERSION_MISMATCH = "TESTOPENINFERENCE_ALLOW_VERSION_MISMATCH"
"""``true`` lets the local backend record with packages other than the pinned ones."""

MAX_SPANS = "TESTOPENINFERENCE_MAX_SPANS"
"""Spans (and, apart, log records) the collector keeps; past it the oldest go, counted (default 100000)."""

REQUESTS_KEPT = "TESTOPENINFERENCE_REQUESTS_KEPT"
"""Requests (with their bodies) the fake server keeps per cassette name, the latest ones (default 100)."""

MAX_CONNECTIONS = "TESTOPENINFERENCE_MAX_CONNECTIONS"
"""Connections each server holds at once; a request on one more is answered 503 (default 100)."""

HEADER_TIMEOUT = "TESTOPENINFERENCE_HEADER_TIMEOUT"
"""Seconds a request's headers may take to arrive (default 10); then 408."""

BODY_TIMEOUT = "TESTOPENINFERENCE_BODY_TIMEOUT"
"""Seconds a request body may go without a byte (default 30); then 408."""

IDLE_TIMEOUT = "TESTOPENINFERENCE_IDLE_TIMEOUT"
"""Seconds an idle keep-alive connection is kept open (default 5)."""

GRPC = "TESTOPENINFERENCE_GRPC"
"""``false`` turns off the collector's OTLP/gRPC receiver in ``serve`` and the pytest fixtures (default ``true``)."""
PROXY_FORK = "TESTOPENINFERENCE_PROXY_FORK"
"""``false``: every local proxy is started alone, none forked from the fork server (default ``true``)."""
RECORD_CONCURRENCY = "TESTOPENINFERENCE_RECORD_CONCURRENCY"
"""Cassettes ``testopeninference record`` keeps in flight through one proxy at once (default 4)."""

OPENAI_API_KEY = "OPENAI_API_KEY"
"""A real API key: a missing cassette is then recorded from the live API."""

OPENAI_BASE_URL = "OPENAI_BASE_URL"
"""Where live recordings go (default https://api.openai.com/v1): any OpenAI-compatible server."""

AZURE_OPENAI_API_KEY = "AZURE_OPENAI_API_KEY"
AZURE_OPENAI_ENDPOINT = "AZURE_OPENAI_ENDPOINT"
AZURE_OPENAI_DEPLOYMENT = "AZURE_OPENAI_DEPLOYMENT"
OPENAI_API_VERSION = "OPENAI_API_VERSION"
"""Azure OpenAI: key, ``https://<resource>.openai.azure.com``, deployment and API version for live recordings."""

ANTHROPIC_API_KEY = "ANTHROPIC_API_KEY"
ANTHROPIC_BASE_URL = "ANTHROPIC_BASE_URL"
"""Anthropic's key and API (default https://api.anthropic.com): missing ``anthropic-*`` cassettes are recorded there."""

COHERE_API_KEY = "CO_API_KEY"
COHERE_BASE_URL = "CO_API_URL"
"""Cohere's key and API (default https://api.cohere.com), by the names the Cohere SDK reads itself."""


@dataclasses.dataclass(frozen=True)
class Upstream:
    """The real API that missing cassettes are recorded from; keys never appear in a repr."""

    openai_api_key: str = dataclasses.field(default="", repr=False)
    openai_base_url: str = "https://api.openai.com/v1"
    azure_api_key: str = dataclasses.field(default="", repr=False)
    azure_endpoint: str = ""
    azure_deployment: str = ""
    api_version: str = ""
    anthropic_api_key: str = dataclasses.field(default="", repr=False)
    anthropic_base_url: str = "https://api.anthropic.com"
    cohere_api_key: str = dataclasses.field(default="", repr=False)
    cohere_base_url: str = "https://api.cohere.com"

    @property
    def enabled(self) -> bool:
        keys = (self.openai_api_key, self.anthropic_api_key, self.cohere_api_key)
        return any(keys) or bool(self.azure_api_key and self.azure_endpoint)

    @property
    def secrets(self) -> list[str]:
        """Every key, to be scrubbed from whatever is written."""
        return [self.openai_api_key, self.azure_api_key, self.anthropic_api_key, self.cohere_api_key]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Upstream:
        return cls(
            openai_api_key=env.get(OPENAI_API_KEY, ""),
            openai_base_url=env.get(OPENAI_BASE_URL) or cls.openai_base_url,
            azure_api_key=env.get(AZURE_OPENAI_API_KEY, ""),
            azure_endpoint=env.get(AZURE_OPENAI_ENDPOINT, ""),
            azure_deployment=env.get(AZURE_OPENAI_DEPLOYMENT, ""),
            api_version=env.get(OPENAI_API_VERSION, ""),
            anthropic_api_key=env.get(ANTHROPIC_API_KEY, ""),
            anthropic_base_url=env.get(ANTHROPIC_BASE_URL) or cls.anthropic_base_url,
            cohere_api_key=env.get(COHERE_API_KEY, ""),
            cohere_base_url=env.get(COHERE_BASE_URL) or cls.cohere_base_url,
        )


class RecordMode(str, enum.Enum):
    """When a golden span is recorded."""

    NONE = "none"  # only read goldens; a missing one is an error
    MISSING = "missing"  # record goldens that do not exist yet
    ALL = "all"  # re-record every golden that is asked for

    @classmethod
    def parse(cls, value: str | bool | RecordMode) -> RecordMode:
        """Accept the enum, a bool, or the RECORD_SPANS spellings; typos fail loudly."""
        if isinstance(value, RecordMode):
            return value
        text = str(value).strip().lower()
        if text in _RECORD_MODE_WORDS:
            return _RECORD_MODE_WORDS[text]
        valid = ", ".join(sorted(_RECORD_MODE_WORDS))
        raise ConfigurationError(f"{RECORD_SPANS}={value!r} is not valid; use one of: {valid}.")


_RECORD_MODE_WORDS = {
    "": RecordMode.NONE,
    "0": RecordMode.NONE,
    "false": RecordMode.NONE,
    "no": RecordMode.NONE,
    "none": RecordMode.NONE,
    "1": RecordMode.MISSING,
    "true": RecordMode.MISSING,
    "yes": RecordMode.MISSING,
    "missing": RecordMode.MISSING,
    "all": RecordMode.ALL,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the recorder and the API need, passed down explicitly.

    ``cassettes_dir`` and ``spans_dir`` are the user's own (goldens are recorded there); the packaged
    library is used beside them unless ``library`` is False (see ``recorder.layers``).
    """

    cassettes_dir: Path = resources.CASSETTES
    spans_dir: Path = resources.SPANS
    library: bool = True
    record_mode: RecordMode = RecordMode.NONE
    backend: str = "local"
    convention: str = "openinference"
    span_timeout: float = 30.0
    startup_timeout: float = 60.0
    allow_version_mismatch: bool = False
    proxy_env: str = "auto"
    proxy_fork: bool = True  # from the second local proxy alive at once, fork proxies (backends/fork_server.py)
    cache_dir: Path | None = None  # None: the user cache directory (recorder.proxy_env.default_cache_dir)
    requirements_file: Path = resources.PROXY / "requirements.txt"
    proxy_script: Path = resources.PROXY / "openai_proxy.py"
    upstream: Upstream = Upstream()  # disabled: a missing cassette is an error
    docker_base_image: str = "python:3.13-slim"
    docker_wheelhouse: Path | None = None
    max_spans: int = 100_000
    requests_kept: int = 100
    max_connections: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0
    ignore_body_keys: tuple[str, ...] = ()  # request body keys the fake server tolerates (pyproject only)
    grpc: bool = True  # the collector also receives OTLP/gRPC (serve and the fixtures)
    record_concurrency: int = 4

    def connection_limits(self) -> ConnectionLimits:
        """What the fake server and the collector allow each client."""
        from testopeninference.recorder.loopback import ConnectionLimits

        return ConnectionLimits(self.max_connections, self.header_timeout, self.body_timeout, self.idle_timeout)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, start: Path | None = None,
                 **overrides: object) -> Settings:
        """Build settings from ``overrides`` (non-None wins), then ``environ``, then the
        ``[tool.testopeninference]`` table of the nearest ``pyproject.toml`` above ``start`` (the working
        directory), then defaults. Installed, the user's directories default to ``cassettes/`` and
        ``spans/`` beside that ``pyproject.toml`` (or in the working directory)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {"upstream": Upstream.from_env(env)}
        values.update(_project_values(Path.cwd() if start is None else start))
        values.update(_env_values(env))
        values.update({key: value for key, value in overrides.items() if value is not None})
        _normalise(values)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def cassette_dirs(self) -> tuple[Path, ...]:
        """Where cassettes are looked up, in order: the user's directory, then the packaged library."""
        if self.library and os.path.abspath(self.cassettes_dir) != os.path.abspath(resources.CASSETTES):
            return (self.cassettes_dir, resources.CASSETTES)
        return (self.cassettes_dir,)


PROXY_ENVS = ("auto", "isolated", "current")


_POSITIVE_INTS = {MAX_SPANS: "max_spans", REQUESTS_KEPT: "requests_kept", MAX_CONNECTIONS: "max_connections",
                  RECORD_CONCURRENCY: "record_concurrency"}
_POSITIVE_FLOATS = {HEADER_TIMEOUT: "header_timeout", BODY_TIMEOUT: "body_timeout", IDLE_TIMEOUT: "idle_timeout"}


def _positive_int(name: str, text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value <= 0:
        raise ConfigurationError(f"{name}={text!r} must be a positive whole number.")
    return value


def _positive_float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigurationError(f"{name}={text!r} must be a positive number of seconds.")
    return value


def _flag(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes"}


def _project_values(start: Path) -> dict[str, object]:
    """The ``[tool.testopeninference]`` values; installed, the user's folders beside its ``pyproject.toml``."""
    values: dict[str, object] = {}
    project = project_settings(start)
    root = project.pop("root")
    assert isinstance(root, Path)  # project_settings always names the folder it resolved paths against
    if resources.INSTALLED:  # a checkout's own folders are the defaults already
        values.update(cassettes_dir=root / "cassettes", spans_dir=root / "spans")
    values.update(project)
    return values


def _env_values(env: Mapping[str, str]) -> dict[str, object]:
    """The values the environment variables set (each read here, once)."""
    values: dict[str, object] = {}
    if CASSETTES_DIR in env:
        values["cassettes_dir"] = Path(env[CASSETTES_DIR])
    if SPANS_DIR in env:
        values["spans_dir"] = Path(env[SPANS_DIR])
    if RECORD_SPANS in env:
        values["record_mode"] = RecordMode.parse(env[RECORD_SPANS])
    if RECORD_BACKEND in env:
        values["backend"] = env[RECORD_BACKEND].strip().lower()
    if env.get(CONVENTION):
        values["convention"] = env[CONVENTION].strip()
    if DOCKER_BASE_IMAGE in env:
        values["docker_base_image"] = env[DOCKER_BASE_IMAGE]
    if env.get(DOCKER_WHEELHOUSE):
        values["docker_wheelhouse"] = Path(env[DOCKER_WHEELHOUSE])
    if SPAN_TIMEOUT in env:
        values["span_timeout"] = _positive_float(SPAN_TIMEOUT, env[SPAN_TIMEOUT])
    if LIBRARY in env:
        values["library"] = _flag(env[LIBRARY])
    if env.get(PROXY_ENV):
        values["proxy_env"] = env[PROXY_ENV].strip().lower()
    if env.get(CACHE_DIR):
        values["cache_dir"] = Path(env[CACHE_DIR])
    if GRPC in env:
        values["grpc"] = _flag(env[GRPC])
    if ALLOW_VERSION_MISMATCH in env:
        values["allow_version_mismatch"] = _flag(env[ALLOW_VERSION_MISMATCH])
    if PROXY_FORK in env:
        values["proxy_fork"] = _flag(env[PROXY_FORK])
    for name, key in _POSITIVE_INTS.items():
        if name in env:
            values[key] = _positive_int(name, env[name])
    for name, key in _POSITIVE_FLOATS.items():
        if name in env:
            values[key] = _positive_float(name, env[name])
    return values


def _normalise(values: dict[str, object]) -> None:
    """Give values from any source their field's type, in place; a ``ConfigurationError`` for a bad one."""
    if "record_mode" in values:
        values["record_mode"] = RecordMode.parse(values["record_mode"])  # type: ignore[arg-type]
    for key in ("cassettes_dir", "spans_dir"):
        if key in values:
            values[key] = Path(values[key])  # type: ignore[arg-type]
    if "span_timeout" in values:
        values["span_timeout"] = _positive_float("span-timeout", str(values["span_timeout"]))
    if values.get("proxy_env", "auto") not in PROXY_ENVS:
        raise ConfigurationError(
            f"{PROXY_ENV}={values['proxy_env']!r} is not valid; use one of: {', '.join(PROXY_ENVS)}."
        )

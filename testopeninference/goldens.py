"""Golden spans by cassette name: read from ``spans/``, recorded first when allowed.

Recording starts a proxy, which takes about a second, so one ``SpanRecorder``
per settings is kept for the life of the process and reused by every call;
``close_recorders()`` (also run at exit) stops them. In a pytest-xdist worker
the plugin calls ``use_recording_service``: recordings then go to the run's one
``RecordingService`` (``recorder/shared_recording.py``, through ``recorder/remote_recorder.py``), so the workers share
one proxy per convention instead of starting one each.
"""

from __future__ import annotations

import atexit
import sys
from importlib import metadata
import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder import layers, resources
from testopeninference.recorder.conventions import get_convention
from testopeninference.recorder.layers import GoldenLocation, cassette_library
from testopeninference.recorder.endpoints import Endpoint, endpoint_of
from testopeninference.recorder.span_file import log_records, read_logs, read_span
from testopeninference.errors import ConfigurationError, GoldenSpanMissingError, NotCoveredError, record_command

if TYPE_CHECKING:  # recording's modules load with the first recording, not with every import (the pytest plugin's)
    from testopeninference.recorder.record_result import RecordResult
    from testopeninference.recorder.session import SpanRecorder
    from testopeninference.recorder.remote_recorder import RemoteRecorder

_recorders: dict[Settings, SpanRecorder | RemoteRecorder] = {}
_service_url: list[str] = []  # the run's RecordingService, in a pytest-xdist worker
_rerecorded: set[Path] = set()  # goldens re-recorded by this process under RecordMode.ALL
_lock = threading.Lock()
_progress_listeners: list[Callable[[str], None]] = []  # told of slow one-time work, such as the proxy's virtualenv
_listeners: list[Callable[[RecordResult], None]] = []  # told of each golden recorded (the pytest plugin's progress)


def on_recorded(listener: Callable[[RecordResult], None]) -> Callable[[], None]:
    """Call ``listener`` with each ``RecordResult`` this process records; returns the function that stops it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def _recorded(result: RecordResult) -> None:
    for listener in list(_listeners):
        listener(result)


def on_progress(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener`` with each progress note (making the proxy's virtualenv) instead of printing it."""
    _progress_listeners.append(listener)
    return lambda: _progress_listeners.remove(listener) if listener in _progress_listeners else None


def _progress(line: str) -> None:
    if not _progress_listeners:
        print(f"testopeninference: {line}", file=sys.stderr, flush=True)
    for listener in list(_progress_listeners):
        listener(line)


def get_span(
    cassette: str,
    *,
    convention: str | None = None,
    cassettes_dir: Path | str | None = None,
    spans_dir: Path | str | None = None,
    record: RecordMode | str | bool | None = None,
) -> Span:
    """The golden span of ``cassette`` (a packaged cassette's, or your own from ``cassettes_dir``).

    Each argument left out comes from the environment (``TESTOPENINFERENCE_CONVENTION``,
    ``TESTOPENINFERENCE_CASSETTES_DIR``, ``TESTOPENINFERENCE_SPANS_DIR``, ``RECORD_SPANS``), then from
    ``[tool.testopeninference]`` in the nearest ``pyproject.toml``, then the defaults (the README's settings
    table). ``record`` (``"missing"``, ``"all"`` or a bool) records the golden first through the proxy."""
    return golden_span(_settings(convention, cassettes_dir, spans_dir, record), cassette)


def get_chat_span(
    cassette: str,
    *,
    convention: str | None = None,
    cassettes_dir: Path | str | None = None,
    spans_dir: Path | str | None = None,
    record: RecordMode | str | bool | None = None,
) -> Span:
    """Like ``get_span``, for a cassette of the chat completions endpoint."""
    return golden_span(_settings(convention, cassettes_dir, spans_dir, record), cassette, endpoint=Endpoint.CHAT)


def get_log_records(
    cassette: str,
    *,
    convention: str | None = None,
    cassettes_dir: Path | str | None = None,
    spans_dir: Path | str | None = None,
    record: RecordMode | str | bool | None = None,
) -> list[LogRecord]:
    """The golden log records (events) of ``cassette``, for a convention that emits events."""
    settings = _settings(convention, cassettes_dir, spans_dir, record)
    chosen = get_convention(settings.convention)
    if not chosen.emits_events:
        raise ConfigurationError(
            f"convention {chosen.name!r} puts message content in span attributes and has no golden log records; "
            "use an events convention such as otel-genai-events or openllmetry-events."
        )
    location = golden_location(settings, cassette)  # records span and log records together when allowed
    return log_records(read_logs(chosen.logs_path(location.spans_dir, cassette)))


def _settings(
    convention: str | None,
    cassettes_dir: Path | str | None,
    spans_dir: Path | str | None,
    record: RecordMode | str | bool | None,
) -> Settings:
    explicit = dict(convention=convention, cassettes_dir=cassettes_dir, spans_dir=spans_dir, record_mode=record)
    overrides = {**_option_defaults, **{key: value for key, value in explicit.items() if value is not None}}
    return Settings.from_env(None, None, **overrides)


_option_defaults: dict[str, object] = {}  # the pytest plugin's options: above the environment, below arguments


def use_option_defaults(**values: object) -> Callable[[], None]:
    """Make ``values`` (Settings fields, such as the pytest options' ``record_mode`` and ``convention``) the
    defaults of ``get_span`` and the other functions here, above the environment and below their arguments,
    without touching ``os.environ`` (which child processes would inherit); returns the function that undoes it."""
    given = {key: value for key, value in values.items() if value is not None}
    saved = dict(_option_defaults)
    _option_defaults.update(given)

    def undo() -> None:
        _option_defaults.clear()
        _option_defaults.update(saved)

    return undo


def golden_span(settings: Settings, cassette: str, endpoint: Endpoint | None = None) -> Span:
    """The golden for ``cassette`` under ``settings``, recording it when the mode asks for it.

    With ``endpoint``, a cassette of another endpoint is refused.
    """
    return read_span(golden_location(settings, cassette, endpoint).path)


def golden_location(settings: Settings, cassette: str, endpoint: Endpoint | None = None) -> GoldenLocation:
    """Where the golden of ``cassette`` is (the user's own, else the packaged one), recorded first if allowed."""
    library = cassette_library(settings)
    loaded = library.load(cassette)  # unknown names fail here, with suggestions
    actual = endpoint_of(loaded)
    if endpoint is not None and actual is not endpoint:
        raise ConfigurationError(
            f"cassette {cassette!r} is an {actual.value!r} cassette, not a {endpoint.value} one; "
            "use get_span() for it."
        )
    convention = get_convention(settings.convention)
    why = convention.why_not_covered(cassette, actual)
    if why:
        raise NotCoveredError(f"no {convention.name} golden for {cassette!r}: {why}.")
    location = layers.golden_location(settings, convention, loaded.path)
    mode = settings.record_mode
    if mode is not RecordMode.NONE:
        resources.refuse_packaged(settings.spans_dir)  # before any proxy starts
    with _lock:
        own = convention.span_path(settings.spans_dir, cassette)  # recordings always go to the user's directory
        if mode is RecordMode.ALL and own not in _rerecorded:
            _recorded(_recorder(settings).record(cassette, force=True))
            _rerecorded.add(own)
            location = layers.golden_location(settings, convention, loaded.path)
        elif mode is RecordMode.MISSING and not location.path.exists():
            _recorded(_recorder(settings).record(cassette))
            location = layers.golden_location(settings, convention, loaded.path)
    if not location.path.exists():
        raise GoldenSpanMissingError(missing_golden_message(location, convention.name, cassette, loaded.path))
    return location


def missing_golden_message(location: GoldenLocation, convention: str, cassette: str, cassette_path: Path) -> str:
    """Advice that fits: a cassette of the packaged library, or one of the user's own."""
    option = "" if convention == "openinference" else f" --convention {convention}"
    if location.spans_dir != Settings.from_env().spans_dir:  # not where the command would look by itself
        option += f" --spans-dir {location.spans_dir}"
    how = (f"`{record_command(cassette, force=False, options=option)}` or run pytest with `--record-spans`"
           f"{'' if convention == 'openinference' else f' --span-convention {convention}'}")
    if layers.source_label(cassette_path) == "package" and resources.INSTALLED:
        return (f"the installed testopeninference {metadata.version('testopeninference')} ships no {convention} golden for the packaged "
                f"cassette {cassette!r}; record one into {location.spans_dir} with {how}.")
    return f"golden span {location.path} does not exist; record it with {how}."


def use_recording_service(address: str | None) -> None:
    """Record through the ``RecordingService`` at ``address`` (the pytest-xdist controller's); ``None``: here."""
    close_recorders()
    _service_url[:] = [address] if address else []


def _recorder(settings: Settings) -> SpanRecorder | RemoteRecorder:
    key = _recorder_key(settings)
    if key not in _recorders:
        if _service_url:
            from testopeninference.recorder.remote_recorder import RemoteRecorder

            _recorders[key] = RemoteRecorder(_service_url[0], key, _local_recorder)
        else:
            _recorders[key] = _local_recorder(key)
    return _recorders[key]


def _local_recorder(settings: Settings) -> SpanRecorder:
    from testopeninference.recorder.session import SpanRecorder

    return SpanRecorder(settings, progress=_progress).start()


def _recorder_key(settings: Settings) -> Settings:
    """Settings that differ only in record mode share a recorder."""
    return dataclasses.replace(settings, record_mode=RecordMode.NONE)


def close_recorders() -> None:
    """Stop every recorder this process started."""
    with _lock:
        while _recorders:
            _recorders.popitem()[1].stop()


atexit.register(close_recorders)

"""`testopeninference record` starts the proxy first: it imports while the recorder loads cassettes and starts
its servers, on the sockets whose addresses the proxy was given."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from testopeninference.recorder.backends.early import start_early
from testopeninference.recorder.config import Settings
from testopeninference.recorder.session import SpanRecorder
from tests.helpers import CASSETTES

NAMES = ["chat-basic", "chat-streaming", "embeddings-basic", "responses-basic"]

_PROBE = """
import sys, threading
from testopeninference.recorder.backends.local import LocalBackend

launch = LocalBackend.launch

def noting(self, env):
    servers = sorted(t.name for t in threading.enumerate() if t.name in ("fake-openai", "otlp-collector"))
    print("servers running at launch:", servers, flush=True)
    return launch(self, env)

LocalBackend.launch = noting
from testopeninference.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_proxy_is_launched_before_the_servers_it_talks_to_start(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, "record", "--force", "--cassettes-dir", str(CASSETTES), "--spans-dir",
         str(tmp_path), "chat-basic"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "servers running at launch: []" in result.stdout
    assert (tmp_path / "chat-basic.json").exists()


RECORDER = "testopeninference.recorder.session"
SERVERS = ("testopeninference.recorder.fake_openai", "testopeninference.recorder.collector", "uvicorn")
LIGHT_IMPORTS = {  # what loading a module must not load: the loads that pay for these come later, if at all
    "testopeninference": (RECORDER, "testopeninference.compare", "deepdiff", "openai"),
    # what `record` imports before it starts the proxy
    "testopeninference.cli": (RECORDER, *SERVERS, "httpx", "deepdiff"),
    # loaded in every pytest run of a gateway's repository: its servers load with the first fixture
    "testopeninference.pytest_plugin": (RECORDER, *SERVERS, "testopeninference.recorder.shared_recording",
                                        "testopeninference.kit", "deepdiff"),
    # each xdist worker's recording client (four workers on two cores): the standard library's, nothing more
    "testopeninference.recorder.remote_recorder": (RECORDER, "testopeninference.recorder.loopback",
                                                   "testopeninference.recorder.shared_recording", "uvicorn", "httpx"),
}


@pytest.mark.parametrize("module", LIGHT_IMPORTS)
def test_a_module_loads_none_of_what_it_does_not_need_yet(module: str):
    code = f"import sys, {module}; print(sorted(m for m in {LIGHT_IMPORTS[module]!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_an_early_proxy_records_the_bytes_of_one_started_last(tmp_path: Path):
    first, early = tmp_path / "first", tmp_path / "early"
    with SpanRecorder(Settings.from_env(cassettes_dir=CASSETTES, spans_dir=first)) as recorder:
        list(recorder.record_many(NAMES, force=True))
    settings = Settings.from_env(cassettes_dir=CASSETTES, spans_dir=early)
    with SpanRecorder(settings, early=start_early(settings)).start_in_background() as recorder:
        list(recorder.record_many(NAMES, force=True))
    for name in NAMES:
        assert (early / f"{name}.json").read_bytes() == (first / f"{name}.json").read_bytes(), name


def test_only_the_local_backend_starts_early():
    settings = Settings.from_env(cassettes_dir=CASSETTES)
    assert start_early(dataclasses.replace(settings, backend="docker")) is None


def test_the_comparison_loads_deepdiff_only_for_a_difference_it_needs():
    code = ("import sys; from testopeninference.compare import span_differences; "
            "print('deepdiff' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_a_recorder_that_cannot_be_made_stops_the_early_proxy(tmp_path: Path, monkeypatch):
    from io import StringIO

    from testopeninference import cli
    from testopeninference.errors import RecordingError

    started = []

    def noting(settings):
        started.append(start_early(settings))
        return started[-1]

    def refuse(self, *args, **kwargs):
        raise RecordingError("no recorder today")

    monkeypatch.setattr(cli, "start_early", noting)
    monkeypatch.setattr(SpanRecorder, "__init__", refuse)
    err = StringIO()
    code = cli.main(["record", "--force", "--cassettes-dir", str(CASSETTES), "--spans-dir", str(tmp_path),
                     "chat-basic"], out=StringIO(), err=err)
    assert code == 1 and "no recorder today" in err.getvalue()
    assert started and started[0] is not None and not started[0].backend.alive()
    assert started[0].fake_listener.fileno() == -1 and started[0].collector_listener.fileno() == -1  # closed

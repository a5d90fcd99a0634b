"""The run's recording service (``recorder/shared_recording.py``): typed errors, a fallback, JSON refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from testopeninference.errors import CassetteNotFoundError
from testopeninference.recorder.config import Settings
from testopeninference.recorder.record_result import RecordResult
from testopeninference.recorder.remote_recorder import TOKEN_HEADER, RemoteRecorder
from testopeninference.recorder.shared_recording import RecordingService
from tests.helpers import CASSETTES


@pytest.fixture
def service():
    with RecordingService() as running:
        yield running


class _LocalRecorder:
    """Stands in for the worker's own SpanRecorder: the fallback is what this test is about."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def record(self, cassette: str, *, force: bool = False) -> RecordResult:
        return RecordResult(cassette, Path("local"), True, 0.0)

    def stop(self) -> None:
        pass


def test_a_worker_whose_settings_the_service_would_not_rebuild_records_itself(service, tmp_path: Path):
    settings = dataclasses.replace(Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path), span_timeout=7.5)
    remote = RemoteRecorder(service.address, settings, _LocalRecorder)
    assert remote.record("chat-basic").path == Path("local")
    remote.stop()


def test_the_services_error_reaches_the_worker_with_its_type(service, tmp_path: Path):
    remote = RemoteRecorder(service.address, Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path), _LocalRecorder)
    with pytest.raises(CassetteNotFoundError, match="chat-basik"):
        remote.record("chat-basik")
    remote.stop()


@pytest.mark.parametrize(("method", "path", "body", "status", "token"), [
    ("POST", "/record", b"{not json", 400, True),
    ("POST", "/record", b"{}", 400, True),
    ("GET", "/record", b"", 404, True),
    ("POST", "/other", b"{}", 404, True),
    ("POST", "/record", b"{}", 403, False),
])
def test_bad_requests_get_a_status_and_a_json_body(service, method: str, path: str, body: bytes, status: int,
                                                   token: bool):
    headers = {TOKEN_HEADER: service.token} if token else {"X-Recording-Token": "guessed"}
    response = httpx.request(method, f"{service.url}{path}", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["message"]

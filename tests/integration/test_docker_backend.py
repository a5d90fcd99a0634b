"""The Docker backend against a real engine: same pinned packages, so the same bytes as the local backend.

Skipped with the reason when no engine answers, except where
TESTOPENINFERENCE_REQUIRE_DOCKER=1 (set by .ci/run): there it must run.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from recorder.backends import create_backend, resolve_backend_name
from recorder.backends.docker import CONTAINER_PREFIX, DockerBackend, docker_client, engine_available
from recorder.config import Settings
from recorder.conventions import CONVENTIONS
from recorder.session import SpanRecorder
from testopeninference.errors import ConfigurationError, ProxyError
from tests.helpers import CASSETTES

NAMES = ["chat-basic", "chat-streaming", "chat-bad-request", "audio-transcription-basic", "azure-chat-basic",
         "embeddings-basic"]


@pytest.fixture(scope="module")
def docker_settings(tmp_path_factory) -> Settings:
    if not engine_available():
        if os.environ.get("TESTOPENINFERENCE_REQUIRE_DOCKER") == "1":
            pytest.fail("TESTOPENINFERENCE_REQUIRE_DOCKER=1 but no Docker engine answers")
        pytest.skip("no Docker engine answers (start one, e.g. with .ci/start-docker, to run these tests)")
    return Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path_factory.mktemp("docker"), backend="docker")


def our_containers() -> list:
    client = docker_client()
    try:
        return [c for c in client.containers.list(all=True) if c.name.startswith(CONTAINER_PREFIX)]
    finally:
        client.close()


def test_docker_and_local_backends_write_identical_files(docker_settings: Settings, tmp_path: Path):
    local = dataclasses.replace(docker_settings, backend="local", spans_dir=tmp_path / "local")
    with SpanRecorder(docker_settings) as recorder:
        assert recorder.backend_name == "docker"
        container = recorder._backend._container.id  # noqa: SLF001
        docker_files = [recorder.record(name).path for name in NAMES]
        assert recorder._backend._container.id == container  # noqa: SLF001 - one container for the session
    with SpanRecorder(local) as recorder:
        local_files = [recorder.record(name).path for name in NAMES]
    for docker_file, local_file in zip(docker_files, local_files):
        assert docker_file.read_bytes() == local_file.read_bytes(), docker_file.name
    assert container not in {c.id for c in our_containers()}


CONVENTION_SAMPLES = ["chat-basic", "chat-tools", "embeddings-basic", "responses-basic"]


@pytest.mark.parametrize("convention", ["otel-genai", "otel-genai-events", "openllmetry", "openllmetry-events"])
def test_the_image_records_every_convention_like_the_local_backend(docker_settings: Settings, convention: str,
                                                                   tmp_path: Path):
    docker = dataclasses.replace(docker_settings, convention=convention, spans_dir=tmp_path / "docker")
    local = dataclasses.replace(docker, backend="local", spans_dir=tmp_path / "local")
    for settings in (docker, local):
        with SpanRecorder(settings) as recorder:
            for name in CONVENTION_SAMPLES:
                recorder.record(name)
    subdir = CONVENTIONS[convention].spans_subdir
    files = sorted(p.name for p in (tmp_path / "local" / subdir).glob("*.json"))
    assert len(files) >= len(CONVENTION_SAMPLES)
    for name in files:
        assert (tmp_path / "docker" / subdir / name).read_bytes() == (tmp_path / "local" / subdir / name).read_bytes()


def test_container_is_removed_on_error(docker_settings: Settings):
    with pytest.raises(RuntimeError), SpanRecorder(docker_settings) as recorder:
        container = recorder._backend._container.id  # noqa: SLF001
        raise RuntimeError("a test failing mid-session")
    assert container not in {c.id for c in our_containers()}


def test_failure_to_start_includes_the_container_log(docker_settings: Settings):
    backend = DockerBackend(dataclasses.replace(docker_settings, convention="no-such-convention"))
    with pytest.raises(ProxyError) as raised:
        backend.start({})
    assert "exited during start-up" in str(raised.value)
    assert "invalid choice: 'no-such-convention'" in str(raised.value)
    backend.stop()
    assert backend.alive() is False


def test_auto_picks_docker_when_an_engine_answers(docker_settings: Settings):
    assert resolve_backend_name("auto") == "docker"


def test_docker_asked_for_but_absent_names_the_local_backend(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(ConfigurationError, match="RECORD_BACKEND=local"):
        create_backend(Settings(backend="docker")).start({})
    assert resolve_backend_name("auto") == "local"


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ConfigurationError, match="use one of: local, docker, auto"):
        resolve_backend_name("podman")

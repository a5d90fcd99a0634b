"""The Docker backend against a real engine: same pinned packages, so the same bytes as the local backend.

Skipped with the reason when no engine answers or the engine has no usable base image (nothing is ever
pulled), except where TESTOPENINFERENCE_REQUIRE_DOCKER=1 (set by .ci/run): there they must run.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from testopeninference.recorder.backends import create_backend, resolve_backend_name
from testopeninference.recorder.backends.docker import (
    OWNER_HOST_LABEL,
    OWNER_PID_LABEL,
    DockerBackend,
    docker_client,
    engine_available,
    image_tag,
    owner_labels,
)
from testopeninference.recorder.config import Settings
from testopeninference.recorder.conventions import CONVENTIONS
from testopeninference.recorder.session import SpanRecorder
from testopeninference.errors import BaseImageMissingError, ConfigurationError, NotCoveredError, ProxyError
from tests.helpers import CASSETTES
from tests.integration.proxy_owner import INTERRUPTED, SIGNALS, kill_owner, port_free, start_owner, wait_until

NAMES = ["chat-basic", "chat-streaming", "chat-bad-request", "audio-transcription-basic", "azure-chat-basic",
         "embeddings-basic",
         # every provider the one proxy serves, streaming and binary replies included
         "anthropic-messages-streaming", "anthropic-messages-overloaded", "anthropic-count-tokens-basic",
         "cohere-rerank-basic", "audio-speech-basic", "audio-speech-streaming"]


def skip_unless_required(reason: str) -> None:
    if os.environ.get("TESTOPENINFERENCE_REQUIRE_DOCKER") == "1":
        pytest.fail(f"TESTOPENINFERENCE_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine_settings(tmp_path_factory) -> Settings:
    """Settings for a Docker engine that answers; its images may be missing."""
    if not engine_available():
        skip_unless_required("no Docker engine answers (start one, e.g. with .ci/start-docker, to run these tests)")
    return Settings.from_env(cassettes_dir=CASSETTES, spans_dir=tmp_path_factory.mktemp("docker"), backend="docker")


@pytest.fixture(scope="module")
def docker_settings(engine_settings: Settings) -> Settings:
    """Settings whose proxy image exists or was just built from a base image the engine has."""
    backend = DockerBackend(engine_settings)
    try:
        backend.ensure_image()
    except BaseImageMissingError as error:
        skip_unless_required(f"no usable base image: {error}")
    finally:
        backend.stop()
    return engine_settings


def our_containers() -> list:
    client = docker_client()
    try:
        # sparse: no inspection per container, which fails on one auto-removed after the listing
        return client.containers.list(all=True, sparse=True, filters={"label": "testopeninference=proxy"})
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


CONVENTION_SAMPLES = ["chat-basic", "chat-tools", "embeddings-basic", "responses-basic", "anthropic-messages-tools",
                      "cohere-rerank-top-n"]


@pytest.mark.parametrize("convention", ["otel-genai", "otel-genai-events", "openllmetry", "openllmetry-events"])
def test_the_image_records_every_convention_like_the_local_backend(docker_settings: Settings, convention: str,
                                                                   tmp_path: Path):
    docker = dataclasses.replace(docker_settings, convention=convention, spans_dir=tmp_path / "docker")
    local = dataclasses.replace(docker, backend="local", spans_dir=tmp_path / "local")
    for settings in (docker, local):
        with SpanRecorder(settings) as recorder:
            covered = [name for name in CONVENTION_SAMPLES if _recorded(recorder, name)]
    subdir = CONVENTIONS[convention].spans_subdir
    files = sorted(p.name for p in (tmp_path / "local" / subdir).glob("*.json"))
    assert "chat-basic" in covered and len(files) >= len(covered)
    for name in files:
        assert (tmp_path / "docker" / subdir / name).read_bytes() == (tmp_path / "local" / subdir / name).read_bytes()


def _recorded(recorder: SpanRecorder, name: str) -> bool:
    """Whether the convention covers the cassette (then it is recorded); e.g. no GenAI instrumentation for Anthropic."""
    try:
        recorder.record(name)
    except NotCoveredError:
        return False
    return True


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


def test_a_missing_base_image_is_one_typed_error_and_nothing_is_pulled(engine_settings: Settings):
    base = "testopeninference-no-such-base:never"
    backend = DockerBackend(dataclasses.replace(engine_settings, docker_base_image=base))
    before = {c.id for c in our_containers()}
    with pytest.raises(BaseImageMissingError) as raised:
        backend.start({})
    backend.stop()
    message = str(raised.value)
    assert base in message and ".ci/start-docker" in message and "TESTOPENINFERENCE_DOCKER_BASE_IMAGE" in message
    client = docker_client()
    try:
        assert not client.images.list(name=base)  # not pulled
    finally:
        client.close()
    assert {c.id for c in our_containers()} == before


def test_the_container_carries_role_and_owner_labels_and_no_secret(docker_settings: Settings, monkeypatch):
    secrets = {"ANTHROPIC_API_KEY": "sk-ant-x1", "AWS_SECRET_ACCESS_KEY": "aws-x2", "AZURE_CLIENT_SECRET": "az-x3"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    with DockerBackend(docker_settings) as backend:
        backend.start({"OTEL_SERVICE_NAME": "labels-test"})
        attributes = backend._container.attrs  # noqa: SLF001
    labels, environment = attributes["Config"]["Labels"], "\n".join(attributes["Config"]["Env"])
    assert labels["testopeninference"] == "proxy"
    assert labels[OWNER_PID_LABEL] == str(os.getpid()) and labels[OWNER_HOST_LABEL] == owner_labels()[OWNER_HOST_LABEL]
    assert "OTEL_SERVICE_NAME=labels-test" in environment
    assert not [value for value in secrets.values() if value in environment]


def test_containers_of_dead_recorders_are_swept_at_start(docker_settings: Settings):
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    client = docker_client()
    try:
        def left_behind(pid: int):
            return client.containers.create(image_tag(docker_settings), command=["--help"], name=None,
                                            labels={**owner_labels(), OWNER_PID_LABEL: str(pid)}).id
        stale, live = left_behind(dead.pid), left_behind(os.getpid())  # both "Created", never started
        with DockerBackend(docker_settings) as backend:
            backend.start({})
        remaining = {c.id for c in our_containers()}
        assert stale not in remaining
        assert live in remaining  # its owner (this process) still runs
    finally:
        client.containers.get(live).remove(force=True)
        client.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_the_proxy_container_dies_with_its_recorder(docker_settings: Settings, signum: int, tmp_path: Path):
    owner, proxy = start_owner("docker", tmp_path)
    assert proxy["container"] in {c.id for c in our_containers()}
    status = kill_owner(owner, signum)
    if signum == signal.SIGTERM:
        assert status == INTERRUPTED  # it unwound and removed its container
    assert wait_until(lambda: proxy["container"] not in {c.id for c in our_containers()}), "the container outlived it"
    assert wait_until(lambda: port_free(proxy["url"])), f"{proxy['url']} is still taken"


def test_the_sweep_removes_only_containers_of_dead_recorders_and_survives_one_removed_meanwhile(
        docker_settings: Settings):
    from testopeninference.recorder.backends.docker import ROLE_LABEL, sweep_stale_containers

    client = docker_client()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # a pid whose process has ended
    made = []
    try:
        for owner in (dead, str(os.getpid()), dead):  # a dead recorder's, a live one's, one that vanishes
            labels = {**owner_labels(), OWNER_PID_LABEL: owner}
            assert labels[ROLE_LABEL[0]] == ROLE_LABEL[1]
            made.append(client.containers.create(image_tag(docker_settings), command=["true"], labels=labels))
        gone = made.pop()
        listed = client.api.containers  # the engine's listing, then the vanishing container is removed at once

        def list_then_remove(*args, **kwargs):
            found = listed(*args, **kwargs)
            gone.remove(force=True)
            return found

        client.api.containers = list_then_remove
        try:
            removed = sweep_stale_containers(client)
        finally:
            client.api.containers = listed
        remaining = {c.id for c in our_containers()}
        assert made[0].id not in remaining and made[1].id in remaining
        assert made[0].name in removed
    finally:
        for container in made:
            try:
                container.remove(force=True)
            except Exception:  # the sweep's
                pass
        client.close()

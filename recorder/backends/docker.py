"""The Docker backend: the proxy in a container built from ``Dockerfile``.

Every team then records with the same Python, SDK and instrumentation. The
image is tagged with a hash of its inputs (Dockerfile, requirements.txt,
openai_proxy.py, base image, wheelhouse) and built only when that tag is
missing. Nothing here pulls from a registry: the base image must already be in
the engine (``.ci/start-docker`` makes one offline), else one typed error says so.
One container serves a whole recording session; it uses the host network, so
the fake server and the collector stay on 127.0.0.1. It is removed at the end
even on error, Ctrl-C or SIGTERM; it exits by itself when the recording process
dies (its lifeline closes) and the engine then removes it (auto-remove).
Containers of dead recording processes on this host are swept at start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from testopeninference.recorder.backends import ProxyBackend, tail
from testopeninference.recorder.backends.environment import proxy_environment
from testopeninference.recorder.backends.lifeline import Lifeline
from testopeninference.recorder.config import Settings
from testopeninference.errors import BaseImageMissingError, ConfigurationError, ProxyError

if TYPE_CHECKING:  # the docker SDK is optional (the docker extra); imported where it is used
    from docker import DockerClient
    from docker.models.containers import Container

IMAGE_REPOSITORY = "testopeninference-proxy"
CONTAINER_PREFIX = "testopeninference-proxy-"
PING_TIMEOUT = 3  # seconds to decide whether an engine answers
ROLE_LABEL = ("testopeninference", "proxy")
OWNER_HOST_LABEL = "testopeninference.owner-host"
OWNER_PID_LABEL = "testopeninference.owner-pid"


def docker_client(timeout: int = 120) -> DockerClient:
    """A client of the engine from DOCKER_HOST or the default socket, or a ConfigurationError."""
    try:
        import docker
    except ImportError:
        raise ConfigurationError(
            "the Docker backend needs the docker SDK: pip install 'testopeninference[docker]', "
            "or use RECORD_BACKEND=local."
        ) from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as error:  # the SDK raises several unrelated types for "no engine"
        raise ConfigurationError(
            f"no Docker engine answers ({error.__class__.__name__}: {error}). Start Docker, or record with the "
            "local backend: RECORD_BACKEND=local (testopeninference record --backend local)."
        ) from None
    return client


def engine_available() -> bool:
    """Whether a Docker engine answers, for ``RECORD_BACKEND=auto``."""
    try:
        docker_client(timeout=PING_TIMEOUT).close()
    except ConfigurationError:
        return False
    return True


PROVIDER_MODULES = ("anthropic_proxy", "cohere_proxy")
"""The provider modules beside ``openai_proxy.py`` (its ``PROVIDERS``)."""


def image_tag(settings: Settings) -> str:
    """``testopeninference-proxy:<hash of every build input>``."""
    digest = hashlib.sha256()
    for path in _build_inputs(settings):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(settings.docker_base_image.encode())
    return f"{IMAGE_REPOSITORY}:{digest.hexdigest()[:16]}"


def _build_inputs(settings: Settings) -> list[Path]:
    root = settings.proxy_script.parent
    providers = [root / f"{name}.py" for name in PROVIDER_MODULES]  # beside the proxy, copied by the Dockerfile
    inputs = [root / "Dockerfile", settings.requirements_file, settings.proxy_script, *providers]
    if settings.docker_wheelhouse:
        inputs += sorted(Path(settings.docker_wheelhouse).glob("*.whl"))
    return inputs


class DockerBackend(ProxyBackend):
    name = "docker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: DockerClient | None = None
        self._container: Container | None = None
        self._lifeline: Lifeline | None = None
        self._output: list[bytes] = []
        self._reader: threading.Thread | None = None

    def start(self, env: Mapping[str, str]) -> str:
        client = self._client = docker_client()
        sweep_stale_containers(client)
        tag = self.ensure_image()
        port = _free_port()
        self._lifeline = Lifeline()
        command = ["--host", "127.0.0.1", "--port", str(port), "--convention", self.settings.convention,
                   "--lifeline", self._lifeline.address]
        # create + start, never containers.run: the SDK pulls when run() meets a missing image.
        container = self._container = client.containers.create(
            tag,
            command=command,
            name=f"{CONTAINER_PREFIX}{uuid.uuid4().hex[:12]}",
            environment=proxy_environment(env),
            network_mode="host",
            auto_remove=True,  # a proxy that exits on its own (its recorder died) leaves no container
            labels=owner_labels(),
        )
        try:
            self._capture_output(container)
            container.start()
        except Exception as error:
            self.stop()  # never leave a container "Created"
            raise ProxyError(f"the proxy container did not start: {error}") from None
        url = f"http://127.0.0.1:{port}"
        self._wait_healthy(url, "the proxy container")
        return url

    def _capture_output(self, container: Container) -> None:
        """Collect the container's output as it is written: with auto-remove, it is gone once the proxy exits."""
        stream = container.attach(stdout=True, stderr=True, stream=True, logs=True)
        output = self._output = []

        def read() -> None:
            try:
                for chunk in stream:
                    output.append(chunk)
            except Exception:  # the container went away; what was read is kept
                pass

        self._reader = threading.Thread(target=read, name="proxy-container-output", daemon=True)
        self._reader.start()

    def ensure_image(self) -> str:
        """Build the proxy image unless an image with the same inputs exists; never pull anything."""
        import docker.errors

        client = self._client = self._client if self._client is not None else docker_client()
        tag = image_tag(self.settings)
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        self._require_base_image(client)
        with tempfile.TemporaryDirectory(prefix="testopeninference-build-") as context:
            for path in _build_inputs(self.settings):
                target = Path(context) / ("wheelhouse" if path.suffix == ".whl" else "") / path.name
                target.parent.mkdir(exist_ok=True)
                shutil.copy2(path, target)
            try:
                client.images.build(
                    path=context,
                    tag=tag,
                    buildargs={"BASE_IMAGE": self.settings.docker_base_image},
                    rm=True,
                    forcerm=True,
                    pull=False,
                    network_mode="none" if self.settings.docker_wheelhouse else None,
                )
            except docker.errors.BuildError as error:
                log = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in error.build_log)
                raise ProxyError(f"building the proxy image {tag} failed: {error.msg}\n{tail(log)}") from None
            except docker.errors.APIError as error:
                raise ProxyError(
                    f"building the proxy image {tag} failed: {error.explanation or error}. "
                    f"Is the base image {self.settings.docker_base_image!r} available to the engine?"
                ) from None
        return tag

    def _require_base_image(self, client: DockerClient) -> None:
        import docker.errors

        base = self.settings.docker_base_image
        try:
            client.images.get(base)
        except docker.errors.ImageNotFound:
            raise BaseImageMissingError(
                f"the Docker engine has no base image {base!r} for the proxy image, and the recorder never pulls "
                "from a registry. Make one offline (.ci/start-docker builds testopeninference-base:bookworm with "
                "debootstrap), pull it yourself where a registry is reachable (docker pull " + base + "), or "
                "name a local image with python3 and venv in TESTOPENINFERENCE_DOCKER_BASE_IMAGE; "
                "or record with RECORD_BACKEND=local."
            ) from None

    def alive(self) -> bool:
        if self._container is None:
            return False
        try:
            self._container.reload()
        except Exception:  # removed behind our back
            return False
        return self._container.status in ("created", "running")

    def logs(self) -> str:
        if self._reader is not None and not self.alive():
            self._reader.join(timeout=2)  # the stream ends with the container: read it to the end
        return b"".join(self._output).decode(errors="replace")

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # already gone (auto-removed)
                pass
        if self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None
        if self._client is not None:
            self._client.close()
            self._client = None


def owner_labels() -> dict[str, str]:
    """Labels that find our containers and tell whether the recording process that made one still lives."""
    return {ROLE_LABEL[0]: ROLE_LABEL[1], OWNER_HOST_LABEL: socket.gethostname(), OWNER_PID_LABEL: str(os.getpid())}


def sweep_stale_containers(client: DockerClient) -> list[str]:
    """Remove proxy containers whose recording process on this host is gone; return their names.

    The lifeline already stops such a proxy; this also removes what an older version or a crash left
    (e.g. containers still "Created"). Containers of live processes and of other hosts are left alone.
    """
    removed = []
    # sparse: the listing's own data, no inspection per container (a container auto-removed between the two
    # would fail the whole sweep with a 404, as when another recorder's proxy stops meanwhile)
    for container in client.containers.list(all=True, sparse=True, filters={"label": "=".join(ROLE_LABEL)}):
        labels = container.attrs.get("Labels") or {}
        if labels.get(OWNER_HOST_LABEL, socket.gethostname()) != socket.gethostname():
            continue
        pid = labels.get(OWNER_PID_LABEL)
        if pid is None and container.attrs.get("State") == "running":
            continue  # an older recorder's, maybe live; it has no lifeline label to judge by
        if pid is not None and _process_alive(int(pid)):
            continue
        try:
            container.remove(force=True)
            removed.append(str((container.attrs.get("Names") or [container.id])[0]).lstrip("/"))
        except Exception:  # removed meanwhile
            pass
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _free_port() -> int:
    """A free loopback port for the container (host network: it binds on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

"""The Docker backend: the proxy in a container built from ``Dockerfile``.

Every team then records with the same Python, SDK and instrumentation. The
image is tagged with a hash of its inputs (Dockerfile, requirements.txt,
openai_proxy.py, base image, wheelhouse) and built only when that tag is
missing. One container serves a whole recording session; it uses the host
network, so the fake server and the collector stay on 127.0.0.1, and it is
removed at the end even on error or Ctrl-C.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Mapping


from recorder.backends import ProxyBackend, tail
from recorder.config import Settings
from testopeninference.errors import ConfigurationError, ProxyError

IMAGE_REPOSITORY = "testopeninference-proxy"
CONTAINER_PREFIX = "testopeninference-proxy-"
PING_TIMEOUT = 3  # seconds to decide whether an engine answers


def docker_client(timeout: int = 120):
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


def image_tag(settings: Settings) -> str:
    """``testopeninference-proxy:<hash of every build input>``."""
    digest = hashlib.sha256()
    for path in _build_inputs(settings):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(settings.docker_base_image.encode())
    return f"{IMAGE_REPOSITORY}:{digest.hexdigest()[:16]}"


def _build_inputs(settings: Settings) -> list[Path]:
    root = settings.proxy_script.parent
    inputs = [root / "Dockerfile", settings.requirements_file, settings.proxy_script]
    if settings.docker_wheelhouse:
        inputs += sorted(Path(settings.docker_wheelhouse).glob("*.whl"))
    return inputs


class DockerBackend(ProxyBackend):
    name = "docker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client = None
        self._container = None

    def start(self, env: Mapping[str, str]) -> str:
        self._client = docker_client()
        tag = self.ensure_image()
        port = _free_port()
        command = ["--host", "127.0.0.1", "--port", str(port), "--convention", self.settings.convention]
        self._container = self._client.containers.run(
            tag,
            command=command,
            name=f"{CONTAINER_PREFIX}{uuid.uuid4().hex[:12]}",
            environment=dict(env),
            network_mode="host",
            detach=True,
            labels={"testopeninference": "proxy"},
        )
        url = f"http://127.0.0.1:{port}"
        self._wait_healthy(url, "the proxy container")
        return url

    def ensure_image(self) -> str:
        """Build the proxy image unless an image with the same inputs exists."""
        import docker.errors

        tag = image_tag(self.settings)
        try:
            self._client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        with tempfile.TemporaryDirectory(prefix="testopeninference-build-") as context:
            for path in _build_inputs(self.settings):
                target = Path(context) / ("wheelhouse" if path.suffix == ".whl" else "") / path.name
                target.parent.mkdir(exist_ok=True)
                shutil.copy2(path, target)
            try:
                self._client.images.build(
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

    def alive(self) -> bool:
        if self._container is None:
            return False
        try:
            self._container.reload()
        except Exception:  # removed behind our back
            return False
        return self._container.status in ("created", "running")

    def logs(self) -> str:
        if self._container is None:
            return ""
        try:
            return self._container.logs().decode(errors="replace")
        except Exception as error:
            return f"(no logs: {error})"

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # already gone
                pass
        if self._client is not None:
            self._client.close()
            self._client = None


def _free_port() -> int:
    """A free loopback port for the container (host network: it binds on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

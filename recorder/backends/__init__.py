"""Backends run the instrumented proxy; the recorder only sees ``ProxyBackend``.

``local`` runs ``openai_proxy.py`` as a subprocess of this interpreter. All
backends share one contract: ``start(env)`` returns the proxy's base URL once
``/health`` answers, ``logs()`` returns what the proxy printed, ``stop()``
always cleans up. Every proxy gets an allow-listed environment
(``environment.py``) and holds a lifeline to the recording process
(``lifeline.py``), so it never outlives it.
"""

from __future__ import annotations

import abc
import time
from typing import Callable, Mapping

from testopeninference.recorder.config import Settings
from testopeninference.recorder.versions import read_pins
from testopeninference.errors import ConfigurationError, ProxyError


class ProxyBackend(abc.ABC):
    """Runs one proxy process for a whole recording session."""

    name: str
    settings: Settings

    @abc.abstractmethod
    def start(self, env: Mapping[str, str]) -> str:
        """Start the proxy with ``env`` added to its environment; return its base URL."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether the proxy is still running."""

    @abc.abstractmethod
    def logs(self) -> str:
        """Everything the proxy has printed so far."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the proxy; safe to call twice."""

    def _wait_healthy(self, url: str, what: str) -> None:
        """Poll ``url/health`` until it answers, the proxy dies, or the start-up timeout passes."""
        import httpx  # here: ``record`` starts a proxy before loading the HTTP client

        deadline = time.monotonic() + self.settings.startup_timeout
        with httpx.Client(timeout=1.0) as client:  # one client: making one costs tens of ms, the proxy's CPU
            while time.monotonic() < deadline:
                if not self.alive():
                    raise ProxyError(f"{what} exited during start-up{self._exit_detail()}:\n{tail(self.logs())}")
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        logs = self.logs()
        self.stop()
        raise ProxyError(
            f"{what} did not answer {url}/health within {self.settings.startup_timeout:g} s:\n{tail(logs)}"
        )

    def exited_within(self, seconds: float) -> bool:
        """Whether the proxy stops within ``seconds``: a dropped connection can arrive before the exit is seen."""
        deadline = time.monotonic() + seconds
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _exit_detail(self) -> str:
        return ""

    def package_versions(self, names: tuple[str, ...]) -> dict[str, str]:
        """Versions the proxy runs with: the pins in requirements.txt (an image is built from them)."""
        pins = read_pins(self.settings.requirements_file)
        return {name: pins.get(name, "unpinned") for name in names}

    def __enter__(self) -> ProxyBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


BACKENDS = ("local", "docker", "auto")


def create_backend(settings: Settings, progress: Callable[[str], None] | None = None) -> ProxyBackend:
    """The backend named by ``settings.backend``; ``auto`` picks Docker when an engine answers."""
    name = resolve_backend_name(settings.backend)
    if name == "docker":
        from testopeninference.recorder.backends.docker import DockerBackend

        return DockerBackend(settings)
    from testopeninference.recorder.backends.local import LocalBackend

    return LocalBackend(settings, progress)


def resolve_backend_name(name: str) -> str:
    """``local`` or ``docker``; a typo lists the valid names."""
    if name not in BACKENDS:
        raise ConfigurationError(f"unknown backend {name!r}; use one of: {', '.join(BACKENDS)}.")
    if name == "auto":
        from testopeninference.recorder.backends.docker import engine_available

        return "docker" if engine_available() else "local"
    return name


def tail(text: str, lines: int = 30) -> str:
    """The last lines of a log, for error messages."""
    kept = text.strip().splitlines()[-lines:]
    return "\n".join("  | " + line for line in kept) if kept else "  | (no output)"

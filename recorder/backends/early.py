"""The proxy started before the recorder's servers exist, so its imports overlap the recorder's own.

The proxy spends about half a second of one core importing the SDK and its instrumentation; the recording
process spends about as long loading its own modules, the cassettes and its servers. ``start_early`` binds the
listening sockets of the fake OpenAI server and of the collector (cheap, no import of either), starts the proxy
with their addresses, and returns at once; ``SpanRecorder`` later serves on those sockets
(``BackgroundServer.serve_on``). Until then the kernel queues whatever the proxy sends them. No handshake, no
new proxy option: the proxy sees the same environment as when it is started last.

Local backend only: a container's start is dominated by Docker, and keeps the usual order.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Callable

from testopeninference.recorder.backends.environment import recording_environment
from testopeninference.recorder.backends.local import LocalBackend
from testopeninference.recorder.config import Settings


@dataclasses.dataclass
class EarlyProxy:
    """A local proxy that is importing, and the sockets its upstream and its collector will be served on."""

    backend: LocalBackend
    url: str
    fake_listener: socket.socket
    collector_listener: socket.socket

    def close(self) -> None:
        """Stop the proxy and close the sockets (those a server took are closed by its ``stop()`` too)."""
        self.backend.stop()
        self.fake_listener.close()
        self.collector_listener.close()


def start_early(settings: Settings, progress: Callable[[str], None] | None = None) -> EarlyProxy | None:
    """Start the local proxy now, before the servers it talks to exist; ``None`` for another backend."""
    if settings.backend != "local":
        return None
    fake, collector = _listener(), _listener()
    backend = LocalBackend(settings, progress)
    try:
        env = recording_environment(_url_of(fake), _url_of(collector))
        return EarlyProxy(backend, backend.launch(env), fake, collector)
    except BaseException:
        backend.stop()
        fake.close()
        collector.close()
        raise


def _listener() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0))


def _url_of(listener: socket.socket) -> str:
    """The URL a ``BackgroundServer`` serving on ``listener`` has (its ``url``)."""
    host, port = listener.getsockname()[:2]
    return f"http://{host}:{port}"

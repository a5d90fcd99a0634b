"""The proxy's lifeline: a loopback connection that dies with the recording process.

The recorder listens on 127.0.0.1 and passes ``--lifeline 127.0.0.1:PORT`` to
the proxy, which connects at start-up and exits as soon as the connection
reaches end of file. The kernel closes the recorder's sockets however it ends
(exit, Ctrl-C, SIGTERM, SIGKILL), so the proxy never outlives it. It works the
same for a local child and for a container on the host network.
"""

from __future__ import annotations

import socket
import threading


class Lifeline:
    """Accepts the proxy's connections and holds them open until ``close()`` or this process ends."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))  # not inheritable: the child gets no copy
        self._held: list[socket.socket] = []
        self._closed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy-lifeline", daemon=True).start()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the proxy's ``--lifeline`` argument."""
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                if self._closed:
                    connection.close()
                    return
                self._held.append(connection)

    def close(self) -> None:
        """Cut the line: every proxy connected to it exits."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            self._closed = True
            held, self._held = self._held, []
        for connection in held:
            connection.close()

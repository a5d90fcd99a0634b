"""Proxies forked from one interpreter that has already imported what every proxy imports.

Each proxy spends about a second of CPU importing FastAPI, uvicorn, the provider SDKs and the OpenTelemetry
SDK before it installs its convention's instrumentation (tens of milliseconds). A run that records several
conventions starts one proxy per convention; from the second one alive at once, ``LocalBackend`` asks a
fork server (``openai_proxy.py --fork-server FD``) instead, which imported all that once and forks a proxy
per request: the child installs its own instrumentation and runs exactly as a proxy started alone, with the
environment, listening socket, log file and lifeline the recorder gives it.

The server and its proxies are watched without being our children: the server answers each request with
the proxy's pid and a pidfd (``ForkedProxy``), which tells when it exits, however it ends. The server runs
in its own process group, holds no lifeline (a thread would make forking unsafe) and exits when its control
socket closes: when the last backend using it stops, or when this process ends, even on SIGKILL. Linux only
(pidfds); elsewhere every proxy is started alone.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Mapping

from testopeninference.errors import ProxyError

REPLY_BYTES = 4096
SERVER_EXIT_SECONDS = 5.0


def available() -> bool:
    """Whether proxies can be forked here: POSIX fork, pidfds (Linux 5.3+) and descriptor passing."""
    return all(hasattr(module, name) for module, name in
               ((os, "fork"), (os, "pidfd_open"), (socket, "send_fds"), (socket, "AF_UNIX")))


class ForkedProxy:
    """A proxy forked by the server, with what ``LocalBackend`` uses of a ``subprocess.Popen``.

    Not our child, so its exit status is not ours to wait for: the proxy writes it to a pipe as it exits
    (``returncode``; none when a signal killed it), and a server that ended before forking it gives its own.
    """

    def __init__(self, server: ForkServer, status: int) -> None:
        self._server = server
        self._status = status  # the read end of the proxy's exit-status pipe
        self._pid: int | None = None
        self._pidfd: int | None = None
        self._exited = False
        self._code: int | None = None

    @property
    def returncode(self) -> int | None:
        """The exit status once it exited and said so (or its server's, if it was never forked); else None."""
        return self._code

    def _resolve(self) -> None:
        """Wait for the server's reply to our request (it first finishes importing)."""
        if self._pid is None and not self._exited:
            self._server.take_replies_until(self)

    def answered(self, pid: int, pidfd: int | None) -> None:
        self._pid, self._pidfd = pid, pidfd
        if pidfd is None:  # it exited before its server could watch it
            self._finish()

    def failed(self, server_code: int | None) -> None:
        self._code = server_code
        self._finish()

    @property
    def pid(self) -> int:
        self._resolve()
        return self._pid if self._pid is not None else -1

    def poll(self) -> int | None:
        """``None`` while the proxy runs; then its exit status, or ``-1`` where it said none (killed)."""
        return None if self._running(0) else self.wait()

    def wait(self, timeout: float | None = None) -> int:
        if self._running(timeout):
            raise subprocess.TimeoutExpired("forked proxy", timeout or 0.0)  # only with a timeout
        self._finish()
        return -1 if self._code is None else self._code

    def _running(self, timeout: float | None) -> bool:
        """Whether it still runs after waiting up to ``timeout`` seconds (None: until it exits)."""
        self._resolve()
        return not self._exited and self._pidfd is not None and not select.select([self._pidfd], [], [], timeout)[0]

    def _finish(self) -> None:
        """It exited: read the status it wrote (if any), close the pipe and the pidfd; once."""
        if self._exited:
            return
        self._exited = True
        try:
            text = os.read(self._status, 32)
        except BlockingIOError:  # its server still holds the pipe's other end: the proxy wrote nothing yet
            text = b""
        os.close(self._status)
        if text.strip().lstrip(b"-").isdigit():
            self._code = int(text)
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            os.close(pidfd)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def signal_group(self, signum: int) -> None:
        """Signal the proxy (by its pidfd: never another process that took its pid) and the process group it
        leads once it has made it (just after the fork, it may still be in its server's)."""
        if self.poll() is not None or self._pidfd is None or self._pid is None:
            return  # exited (its pidfd is closed): the pid may be another process's by now
        try:
            signal.pidfd_send_signal(self._pidfd, signum)
            if os.getpgid(self._pid) == self._pid:
                os.killpg(self._pid, signum)
        except ProcessLookupError:
            pass


class ForkServer:
    """One ``openai_proxy.py --fork-server`` process and the requests sent to it, answered in order."""

    def __init__(self, python: str, script: Path, env: Mapping[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._log: IO[bytes] = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                [python, str(script), "--fork-server", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, cwd=script.parent,
                start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._control = ours
        self._waiting: list[ForkedProxy] = []  # sent, not yet answered: replies come in this order
        self._send_lock = threading.Lock()
        self._reply_lock = threading.Lock()
        self.users = 0

    def spawn(self, argv: list[str], env: Mapping[str, str], listener: socket.socket, log: IO[bytes]) -> ForkedProxy:
        """Ask for a proxy with these arguments (``{fd}`` stands for its listening socket); returns at once."""
        status_read, status_write = os.pipe()
        os.set_blocking(status_read, False)
        proxy = ForkedProxy(self, status_read)
        message = json.dumps({"argv": argv, "env": dict(env)}).encode()
        with self._send_lock:
            self._waiting.append(proxy)
            try:
                socket.send_fds(self._control, [message], [listener.fileno(), log.fileno(), status_write])
            except OSError as error:
                self._waiting.remove(proxy)
                raise ProxyError(f"the proxy fork server did not take the request ({error}):\n{self.logs()}") from None
            finally:
                os.close(status_write)  # the proxy holds its own copy
        return proxy

    def take_replies_until(self, proxy: ForkedProxy) -> None:
        """Read replies, in order, until ``proxy``'s; a server that ended answers nothing more."""
        with self._reply_lock:
            while proxy in self._waiting:
                try:
                    data, fds, _, _ = socket.recv_fds(self._control, REPLY_BYTES, 1)
                except OSError:  # reset: the server ended with our request unread
                    data, fds = b"", []
                with self._send_lock:
                    first = self._waiting.pop(0)
                if not data:  # the server ended: no request left will be answered
                    code = self._exit_code()
                    for waiting in [first, *self._waiting]:
                        waiting.failed(code)
                    self._waiting.clear()
                    return
                first.answered(json.loads(data)["pid"], fds[0] if fds else None)

    def _exit_code(self) -> int | None:
        try:
            return self._process.wait(timeout=SERVER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            return None

    def logs(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def close(self) -> None:
        """Close the control socket: the server exits (proxies it forked keep running, on their lifelines)."""
        self._control.close()
        try:
            self._process.wait(timeout=SERVER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._log.close()


_servers: dict[tuple[str, str], ForkServer] = {}
_servers_lock = threading.Lock()


def running(python: str, script: Path) -> bool:
    """Whether a fork server of this interpreter and script runs (a proxy started now is forked from it)."""
    with _servers_lock:
        return (python, str(script)) in _servers


def acquire(python: str, script: Path, env: Mapping[str, str]) -> ForkServer:
    """The fork server of this interpreter and script, started on first use; ``release`` it when done."""
    key = (python, str(script))
    with _servers_lock:
        server = _servers.get(key)
        if server is None:
            server = _servers[key] = ForkServer(python, script, env)
        server.users += 1
        return server


def release(server: ForkServer) -> None:
    """One user fewer; the last one stops the server."""
    with _servers_lock:
        server.users -= 1
        if server.users > 0:
            return
        for key, found in list(_servers.items()):
            if found is server:
                del _servers[key]
    server.close()

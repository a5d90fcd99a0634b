"""SIGTERM and SIGHUP end a command the way Ctrl-C does, so its clean-up runs.

Python's default for SIGTERM and SIGHUP is to die at once: no ``finally``, no
``__exit__``, so a proxy container would be left behind. As KeyboardInterrupt
they unwind the stack; the proxy's lifeline covers SIGKILL, which nothing can catch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Iterator

TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def interrupt_on_termination() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise KeyboardInterrupt; the previous handlers come back after.

    Only the main thread can set handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _interrupt) for signum in TERMINATION_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)

"""SIGTERM and SIGHUP unwind a command like Ctrl-C, so its proxies and containers are cleaned up."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from testopeninference.recorder.signals import interrupt_on_termination
from testopeninference import cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_termination_raises_keyboard_interrupt_inside_and_not_after(signum: int):
    before = signal.getsignal(signum)
    cleaned = []
    with pytest.raises(KeyboardInterrupt), interrupt_on_termination():
        try:
            os.kill(os.getpid(), signum)
        finally:
            cleaned.append(True)
    assert cleaned == [True]
    assert signal.getsignal(signum) is before


def test_a_terminated_command_exits_130_after_its_clean_up(monkeypatch, capsys):
    cleaned, before = [], signal.getsignal(signal.SIGTERM)

    def terminated_command(args, out):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            cleaned.append(True)
        return 0

    monkeypatch.setattr(cli, "_list", terminated_command)
    assert cli.main(["list"]) == 130
    assert cleaned == [True] and "Interrupted." in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before

"""Crash points: named steps of a run where a test can have the operator SIGKILLed.

The fault matrix kills the operator at each step of a demo and checks that the
next operator finishes it: one fault, never two, and every fault undone.
A point is reached by calling ``Deps.crash(point)``; it does nothing unless the
operator was started with ``CHAOSDEMO_CRASH_AT=<point>`` (testing only), in
which case the process sends itself SIGKILL there: nothing is flushed, no
handler runs, as when the OOM killer or a node failure takes it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from chaosdemo.api.settings import POINTS

__all__ = ["POINTS", "crasher", "never"]



def never(point: str) -> None:
    return None


def crasher(at: str | None) -> Callable[[str], None]:
    if at is None:
        return never

    def crash(point: str) -> None:
        if point == at:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash

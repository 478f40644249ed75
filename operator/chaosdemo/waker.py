"""A broadcast wake-up: Kubernetes watch events wake every waiting demo at once.

The kopf handlers call ``notify()`` on each TiKV pod, StatefulSet or node event;
the watch loops ``wait()`` for the next event or their poll interval, whichever
comes first. So detection follows Kubernetes in milliseconds and PD at the
poll interval, and the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Waker"]


class Waker:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.notifications = 0

    def notify(self) -> None:
        self.notifications += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> bool:
        """True if woken by an event, False if the timeout passed."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
            return True
        return False

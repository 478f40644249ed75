"""The watch journal: TiKV pod watch events as they arrived, and a wake-up.

Not to be confused with Kubernetes Events (the ``Event`` objects a demo posts
and the diagnosis reads): these are the watch stream's ADDED, MODIFIED and
DELETED notifications.

The kopf handlers feed every TiKV pod, StatefulSet and node event here as it
arrives. A pod deleted and recreated within a few hundred milliseconds (as
kwok, or a fast kubelet, does) never shows in a periodic look; its watch
events do. So detection reads the journal first, with each event's arrival
time, and the periodic snapshot second; ``wait()`` returns at the next event
or the poll interval, whichever comes first, and never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaosdemo.snapshot import INSTANCE_LABEL, PodState, pod_from_api

__all__ = ["PodEvent", "WatchJournal"]


@dataclass(frozen=True)
class PodEvent:
    seq: int
    received_at: float
    type: str  # ADDED, MODIFIED, DELETED
    namespace: str
    instance: str
    pod: PodState


class WatchJournal:
    def __init__(self, *, limit: int = 5000, clock: Callable[[], float] = time.time) -> None:
        self._event = asyncio.Event()
        self._journal: deque[PodEvent] = deque(maxlen=limit)
        self._seq = 0
        self._clock = clock

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def pod_event(self, type_: str, body: dict[str, Any]) -> None:
        meta = body.get("metadata", {})
        self._seq += 1
        self._journal.append(
            PodEvent(
                seq=self._seq,
                received_at=self._clock(),
                type=type_ or "MODIFIED",
                namespace=meta.get("namespace", ""),
                instance=(meta.get("labels") or {}).get(INSTANCE_LABEL, ""),
                pod=pod_from_api(body),
            )
        )
        self.notify()

    def cursor(self) -> int:
        return self._seq

    def pod_events_since(self, cursor: int, namespace: str, instance: str) -> tuple[list[PodEvent], int]:
        out = [e for e in self._journal if e.seq > cursor and e.namespace == namespace and e.instance == instance]
        return out, self._seq

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - a poll interval, not a deadline
        """True if woken by an event, False if the timeout passed."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
            return True
        return False

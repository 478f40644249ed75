"""The journal: TiKV pod watch events as they arrived, and wake-ups by subject.

Not to be confused with Kubernetes Events (the ``Event`` objects a demo posts
and the diagnosis reads): these are the watch stream's ADDED, MODIFIED and
DELETED notifications.

The kopf handlers feed every TiKV pod, StatefulSet and node event here as it
arrives. A pod deleted and recreated within a few hundred milliseconds (as
kwok, or a fast kubelet, does) never shows in a periodic look; its watch
events do. So detection reads the journal first, with each event's arrival
time, and the periodic snapshot second.

Node and StatefulSet events also keep the object they carry (``known``), so
every demo's look at a node or its StatefulSet is a dictionary read, not a
GET per demo per look (with 30 demos on the same three nodes, those GETs were
most of what the operator asked of the API server). An object is trusted for
``max_age`` seconds after the last event or read; then the look reads it again.
Only objects a look has read are kept up to date: the rest of a big cluster's
nodes cost nothing.

A wake-up goes only to the demos the event is about: a TiKV pod or
StatefulSet event to the demos on its cluster, a node event to the demos
watching that node. With one demo per cluster on many clusters, an event
costs one look, not one look per running demo. A demo's watch holds one
``wakeup()`` for its whole run, so an event that arrives while the demo is
looking still wakes it for the next look (a wait begun after the look would
have missed it and slept to the poll interval). Its ``wait()`` returns at the
next event on one of its subjects or at the poll interval, whichever comes
first, and no sooner than ``not_before``: a demo that paces its looks still
reads every event at its next one, from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from chaosdemo.core.snapshot import INSTANCE_LABEL, PodState, pod_from_api

__all__ = ["PodEvent", "Subject", "Wakeup", "WatchJournal", "cluster_subject", "node_subject", "statefulset_subject"]

Subject = tuple[str, str, str]


def cluster_subject(namespace: str, instance: str) -> Subject:
    """What a TiKV pod or StatefulSet event is about: its TidbCluster."""
    return ("cluster", namespace, instance)


def node_subject(name: str) -> Subject:
    return ("node", "", name)


def statefulset_subject(namespace: str, name: str) -> Subject:
    return ("statefulset", namespace, name)


@dataclass(frozen=True)
class PodEvent:
    seq: int
    received_at: float
    type: str  # ADDED, MODIFIED, DELETED
    namespace: str
    instance: str
    pod: PodState


def _instance(body: dict[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata", {})
    return meta.get("namespace", ""), (meta.get("labels") or {}).get(INSTANCE_LABEL, "")


class WatchJournal:
    """Pod events are kept only for the clusters a demo follows, at most ``limit`` per cluster."""

    def __init__(self, *, limit: int = 1000, clock: Callable[[], float] = time.time) -> None:
        self._limit = limit
        self._pods: dict[tuple[str, str], deque[PodEvent]] = {}
        self._followers: dict[tuple[str, str], int] = {}
        self._waiters: dict[Subject, set[asyncio.Event]] = {}
        self._objects: dict[Subject, tuple[float, dict[str, Any] | None]] = {}  # None: known to be gone
        self._seq = 0
        self._clock = clock

    def notify(self, subject: Subject) -> None:
        for event in self._waiters.get(subject, ()):
            event.set()

    def pod_event(self, type_: str, body: dict[str, Any]) -> None:
        received_at = self._clock()
        namespace, instance = _instance(body)
        kept = self._pods.get((namespace, instance))
        if kept is None:
            return  # no demo follows this cluster
        self._seq += 1
        kept.append(PodEvent(seq=self._seq, received_at=received_at, type=type_ or "MODIFIED",
                             namespace=namespace, instance=instance, pod=pod_from_api(body)))
        self.notify(cluster_subject(namespace, instance))

    def statefulset_event(self, type_: str, body: dict[str, Any]) -> None:
        meta = body.get("metadata", {})
        self._update(statefulset_subject(meta.get("namespace", ""), meta.get("name", "")),
                     None if type_ == "DELETED" else body)
        self.notify(cluster_subject(*_instance(body)))

    def node_event(self, type_: str, body: dict[str, Any]) -> None:
        subject = node_subject(body.get("metadata", {}).get("name", ""))
        self._update(subject, None if type_ == "DELETED" else body)
        self.notify(subject)

    def _update(self, subject: Subject, body: dict[str, Any] | None) -> None:
        if subject in self._objects:  # only what a look has read
            self._objects[subject] = (self._clock(), body)

    async def read(self, subject: Subject, max_age: float,
                   get: Callable[[], Awaitable[dict[str, Any] | None]]) -> dict[str, Any] | None:
        """The object as the watch last showed it, or ``get()`` when not seen within ``max_age`` seconds."""
        hit, body = self.known(subject, max_age)
        if hit:
            return body
        started = self._clock()
        body = await get()
        seen = self._objects.get(subject)
        if seen is None or seen[0] <= started:  # an event during the read is newer than it
            self._objects[subject] = (started, body)
        return body

    def known(self, subject: Subject, max_age: float) -> tuple[bool, dict[str, Any] | None]:
        """(True, the object or None if gone) if seen within ``max_age`` seconds; (False, None) if not."""
        seen = self._objects.get(subject)
        if seen is None or self._clock() - seen[0] > max_age:
            return False, None
        return True, seen[1]

    def cursor(self) -> int:
        return self._seq

    def pod_events_since(self, cursor: int, namespace: str, instance: str) -> tuple[list[PodEvent], int]:
        kept = self._pods.get((namespace, instance), ())
        return [e for e in kept if e.seq > cursor], self._seq

    @contextlib.contextmanager
    def following(self, namespace: str, instance: str) -> Iterator[None]:
        """Keep this cluster's pod events while inside; take the cursor inside, too."""
        key = (namespace, instance)
        self._followers[key] = self._followers.get(key, 0) + 1
        self._pods.setdefault(key, deque(maxlen=self._limit))
        try:
            yield
        finally:
            self._followers[key] -= 1
            if not self._followers[key]:
                del self._followers[key], self._pods[key]

    async def wait(self, timeout: float, subjects: Iterable[Subject]) -> bool:  # noqa: ASYNC109 - a poll interval
        """True if woken by an event on one of ``subjects``, False if the timeout passed."""
        with self.wakeup(subjects) as wake:
            return await wake.wait(timeout)

    @contextlib.contextmanager
    def wakeup(self, subjects: Iterable[Subject]) -> Iterator[Wakeup]:
        """One waiter on ``subjects`` for as long as the block lasts."""
        wake = Wakeup(self._waiters, subjects)
        try:
            yield wake
        finally:
            wake.watch(())


class Wakeup:
    """Set by any event on its subjects from the moment it is made, until ``clear()``."""

    def __init__(self, waiters: dict[Subject, set[asyncio.Event]], subjects: Iterable[Subject]) -> None:
        self._waiters, self._event, self._subjects = waiters, asyncio.Event(), frozenset[Subject]()
        self.watch(subjects)

    def watch(self, subjects: Iterable[Subject]) -> None:
        """Wake for exactly these subjects from now on."""
        new = frozenset(subjects)
        for key in self._subjects - new:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(self._event)
                if not waiting:
                    del self._waiters[key]
        for key in new - self._subjects:
            self._waiters.setdefault(key, set()).add(self._event)
        self._subjects = new

    def clear(self) -> None:
        """Forget the events so far: call it before a look, which reads them."""
        self._event.clear()

    async def wait(self, timeout: float, not_before: float = 0.0) -> bool:  # noqa: ASYNC109 - a poll interval
        """True if an event came since ``clear()`` (returning no sooner than ``not_before`` seconds),
        False if ``timeout`` passed without one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not_before > 0:
            await asyncio.sleep(min(not_before, timeout))
        if self._event.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), max(0.0, deadline - loop.time()))
            return True
        return False

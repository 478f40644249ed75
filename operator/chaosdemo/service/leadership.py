"""One acting operator among replicas: a leader Lease, as Kubernetes controllers elect theirs.

Every replica runs kopf and sees every ChaosDemo, but only the holder of the
Lease ``chaosdemo-operator`` (in the operator's namespace) runs demos; the
others wait, ready to take over. The rules, after client-go's leader election:

- the leader renews every ``retry`` seconds; if it has not renewed for
  ``renew_deadline`` seconds it steps down at once, stopping its runs (they
  resume, from their status, wherever the next leader picks them up);
- a follower takes the Lease over only after seeing it unchanged for
  ``lease`` seconds (or the holder's leaseDurationSeconds, if longer) by its
  own clock (no trust in another machine's clock);
- ``renew_deadline`` < ``lease``: a leader cut off from the API server stops
  acting before any follower may start.

A replica that steps down competes again, so a leader that lost the API server
for a while (it restarted) is leader again once it is back, and resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chaosdemo.clients.kube import KubeClient

__all__ = ["LEASE_NAME", "Leadership", "LostLeadership", "Timing"]

log = logging.getLogger(__name__)
LEASE_NAME = "chaosdemo-operator"
T = TypeVar("T")


class LostLeadership(Exception):
    """This replica stopped leading while a run was going on; the run resumes under the next leader."""


@dataclass
class Timing:
    lease: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0

    @classmethod
    def for_lease(cls, lease: float) -> Timing:
        """client-go's proportions (15 s lease, 10 s renew deadline, 2 s retry) for any lease."""
        return cls(lease=lease, renew_deadline=lease * 2 / 3, retry=lease * 2 / 15)

    def __post_init__(self) -> None:
        if not 0 < self.retry < self.renew_deadline < self.lease:
            raise ValueError(f"leader election needs 0 < retry < renew deadline < lease, got {self}")


class Leadership:
    def __init__(self, kube: KubeClient, namespace: str, identity: str, timing: Timing | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool], None] = lambda leading: None) -> None:
        self.kube, self.namespace, self.identity = kube, namespace, identity
        self.on_change = on_change
        self.timing = timing or Timing()
        self.clock = clock
        self.leading = asyncio.Event()
        self.following = asyncio.Event()
        self.following.set()
        self._version: str | None = None
        self._renewed = 0.0
        self._seen: tuple[str, str, int] | None = None
        self._seen_at = 0.0

    # ------------------------------------------------------------ the election loop

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.timing.retry)

    async def step(self) -> None:
        """One round of the election, at ``clock()``: renew, or look and maybe claim; step down past the deadline."""
        try:
            await self._round()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the API server is away; the deadline below decides
            log.debug("leader election: %s", e)
        if self.leading.is_set() and self.clock() - self._renewed > self.timing.renew_deadline:
            self._step_down(f"could not renew the Lease for {self.timing.renew_deadline:g}s")

    async def _round(self) -> None:
        now = self.clock()
        if self.leading.is_set():
            version = await self.kube.leases.claim_leader(self.namespace, LEASE_NAME, self.identity,
                                                         round(self.timing.lease), self._version)
            if version is None:
                self._step_down("another replica holds the Lease")
            else:
                self._version, self._renewed = version, now
            return
        current = await self.kube.leases.leader(self.namespace, LEASE_NAME)
        if current is None:
            await self._claim(None, now)
            return
        holder, version, duration = current
        if current != self._seen:
            self._seen, self._seen_at = current, now
        # Ours from before a step-down (the API server was away), nobody's, or unchanged for a whole lease
        # (the holder's, as the Lease says, or ours if longer).
        if holder in (self.identity, "") or now - self._seen_at >= max(duration, self.timing.lease):
            await self._claim(version, now)

    async def _claim(self, version: str | None, now: float) -> None:
        got = await self.kube.leases.claim_leader(self.namespace, LEASE_NAME, self.identity,
                                                 round(self.timing.lease), version)
        if got is not None:
            self._version, self._renewed = got, now
            self.following.clear()
            self.leading.set()
            self.on_change(True)
            log.info("leading: this replica (%s) runs the demos", self.identity)

    def _step_down(self, why: str) -> None:
        log.warning("no longer leading (%s): stopping this replica's runs; they resume under the next leader", why)
        self._version = None
        self.leading.clear()
        self.following.set()
        self.on_change(False)

    async def release(self) -> None:
        """On a clean shutdown: hand the Lease over now rather than after it expires.

        A renewal cancelled in flight may have reached the API server after the version this replica last
        saw (seen: the Lease stayed with a stopped operator, and the next one waited it out). On a conflict
        the Lease is read again, and handed back if it is still this replica's.
        """
        version = self._version if self.leading.is_set() else None
        with contextlib.suppress(Exception):
            for _ in range(3):
                if version is None or await self.kube.leases.claim_leader(
                        self.namespace, LEASE_NAME, "", 1, version) is not None:
                    break
                current = await self.kube.leases.leader(self.namespace, LEASE_NAME)
                version = current[1] if current is not None and current[0] == self.identity else None
        self.leading.clear()

    # ------------------------------------------------------------ what runs only while leading

    async def while_leading(self, work: Callable[[], Awaitable[T]]) -> T:
        """Wait to lead, then run ``work``; LostLeadership (after cancelling it) if leading stops first."""
        await self.leading.wait()
        task = asyncio.ensure_future(work())
        lost = asyncio.ensure_future(self.following.wait())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await _cancel(task, lost)
            raise
        await _cancel(lost)
        if task.done():
            return task.result()
        await _cancel(task)
        raise LostLeadership("this replica stopped leading; the run was stopped where it was")


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t

"""After the injection: look, let the pure step decide, act, until the failure is detected and the cluster recovered.

Paced once the failure is detected (its time comes from the watch event, not from a look): a look at
most every ``look_interval_seconds``, progress written at most every ``save_interval_seconds``;
detection, a restore and the end are written at once. The diagnosis runs beside it, started at
detection, and never holds it up.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from chaosdemo.api.errors import DemoFailed
from chaosdemo.api.models import ChaosDemoStatus, ObserverSight
from chaosdemo.api.timestamps import iso, parse_iso, seconds_between
from chaosdemo.core.inbox import Subject, Wakeup, cluster_subject, node_subject
from chaosdemo.core.invariants import InvariantConfig
from chaosdemo.core.sightings import advance, ours
from chaosdemo.core.step import Detected, Failed, Recovered, RestoreNow, WatchPlan, WatchState, step
from chaosdemo.run.demo import Demo, Progress
from chaosdemo.run.deps import Deps
from chaosdemo.run.diagnosis import DiagnosisJob
from chaosdemo.run.faults import Fault
from chaosdemo.run.observer import Observer

__all__ = ["Follow", "plan_injected", "with_ours"]


def plan_injected(st: ChaosDemoStatus) -> str:
    assert st.injected_at is not None
    return st.injected_at


def with_ours(st: ChaosDemoStatus, sights: list[ObserverSight]) -> list[ObserverSight]:
    """The sightings with this operator's own detection and recovery as they stand in ``st``."""
    return ours(sights, st.detected_at, st.detection_seconds, st.detected_by, st.recovered_at, st.recovery_seconds)


class Follow:
    def __init__(self, deps: Deps, demo: Demo, progress: Progress, observer: Observer, fault: Fault, *,
                 inv_cfg: InvariantConfig, restore: Callable[[], Awaitable[None]], diagnosis: DiagnosisJob) -> None:
        self.deps, self.demo, self.progress, self.observer, self.fault = deps, demo, progress, observer, fault
        self.inv_cfg, self.restore, self.diagnosis = inv_cfg, restore, diagnosis

    def plan(self) -> WatchPlan:
        st, t = self.demo.status, self.demo.spec.timeouts
        assert st.injected_at is not None
        return WatchPlan(injected_at=parse_iso(st.injected_at), detection_seconds=t.detection_seconds,
                         recovery_seconds=t.recovery_seconds, stability_seconds=t.stability_seconds,
                         target=self.demo.target, restore_after=self.fault.restore_after, cfg=self.inv_cfg)

    async def until_recovered(self, resumed: bool) -> None:
        """Return once recovered (the diagnosis finished or given up); raise DemoFailed at a deadline."""
        st, journal, p = self.demo.status, self.deps.journal, self.progress
        p.watch = WatchState(
            detected=st.detected_at is not None,
            restored=st.injection is not None and st.injection.restored_at is not None, resumed=resumed,
            violations=tuple(st.violations), dropped=st.violations_dropped, message=st.message,
            history=p.watch.history)
        self.observer.watch_nodes([self.demo.target.node])
        if self.fault.watches_node_container:
            self.observer.watch_node_containers(self.deps.docker, [self.demo.target.node])
        if p.watch.detected and st.diagnosis is None and self.demo.spec.diagnosis.enabled:
            self.diagnosis.start()
        if p.cursor is None:
            p.cursor = journal.cursor()
        async with self.diagnosis:  # cancelled on every way out that does not await it
            with journal.wakeup(self.subjects()) as wake:
                await self._loop(self.plan(), wake)

    async def _loop(self, plan: WatchPlan, wake: Wakeup) -> None:
        s, p = self.deps.settings, self.progress
        look_gap, save_gap = min(s.look_interval_seconds, s.poll_seconds), s.save_interval_seconds
        saved_at, unsaved = time.monotonic(), False
        while True:
            wake.clear()  # an event from here on wakes the next look, even one during this look
            changed, decision = await self._look(plan)
            if isinstance(decision, RestoreNow):
                await self.restore()  # writes the whole status
                saved_at, unsaved = time.monotonic(), False
                continue
            if isinstance(decision, Failed):
                self.demo.rec.set("Recovered" if decision.detected else "FailureDetected", "False", decision.reason,
                                  "deadline passed")
                await self.diagnosis.finish()
                raise DemoFailed(decision.message, reason=decision.reason)
            if isinstance(decision, Recovered):
                await self._recovered(decision.at)
                return
            if isinstance(decision, Detected):
                await self._detected(decision)
            unsaved = unsaved or changed
            now = time.monotonic()
            if unsaved and (isinstance(decision, Detected) or not p.watch.detected or now - saved_at >= save_gap):
                await self.demo.rec.save()
                saved_at, unsaved = time.monotonic(), False
            wake.watch(self.subjects())
            poll = s.poll_seconds if p.watch.detected else min(s.poll_seconds, s.detect_poll_seconds)
            timeout = poll if not unsaved else max(0.0, min(poll, saved_at + save_gap - now))
            await wake.wait(timeout, not_before=min(look_gap, timeout) if p.watch.detected else 0.0)

    async def _look(self, plan: WatchPlan) -> tuple[bool, object]:
        """One look: the pod events since the last, a snapshot, the step; the status follows the step's state."""
        st, p, journal = self.demo.status, self.progress, self.deps.journal
        assert p.cursor is not None
        events, p.cursor = journal.pod_events_since(p.cursor, self.demo.cluster_ns, self.demo.cluster)
        snap = p.last_snapshot = await self.observer.snapshot()
        result = step(p.watch, plan, events, snap)
        if result.state.message != p.watch.message:
            st.message = result.state.message
        p.watch = result.state
        # New violations are appended; the bounded timeline drops old ones from the front.
        for v in p.watch.violations[len(st.violations) - (p.watch.dropped - st.violations_dropped):]:
            self.deps.metrics.breach(v.invariant)
        st.violations, st.violations_dropped = list(p.watch.violations), p.watch.dropped
        seen = with_ours(st, advance(st.observers, snap, self.demo.target, plan_injected(st)))
        changed = result.changed or seen != st.observers
        st.observers = seen
        return changed, result.decision

    def subjects(self) -> list[Subject]:
        """What wakes this demo's look: its cluster's pods and StatefulSet, the nodes it watches."""
        nodes = self.observer.watched_nodes | self.observer.node_containers
        return [cluster_subject(self.demo.cluster_ns, self.demo.cluster), *(node_subject(n) for n in sorted(nodes))]

    async def _detected(self, d: Detected) -> None:
        st, rec, spec = self.demo.status, self.demo.rec, self.demo.spec
        assert st.injected_at is not None
        first, now = d.breaches[0], iso(d.at)
        st.detected_at = now
        st.detection_seconds = seconds_between(st.injected_at, now)
        st.detected_by = first.invariant
        self.deps.metrics.detected(spec.fault.action, first.invariant, st.detection_seconds)
        rec.set("FailureDetected", "True", "InvariantBroken", f"{first.invariant}: {first.message}")
        rec.set("Recovered", "Unknown", "Waiting", "waiting for every invariant to hold")
        st.message = f"detected in {st.detection_seconds}s by {first.invariant}"
        st.observers = with_ours(st, st.observers)
        if spec.diagnosis.enabled:
            rec.set("Diagnosed", "Unknown", "Diagnosing", "gathering evidence for the diagnosis")
        else:
            rec.set("Diagnosed", "False", "Disabled", "spec.diagnosis.enabled is false")
        await rec.event("Warning", "FailureDetected",
                        f"{first.invariant} broke {st.detection_seconds}s after injection: {first.message}")
        if spec.diagnosis.enabled:
            self.diagnosis.start()

    async def _recovered(self, at: float) -> None:
        st, rec = self.demo.status, self.demo.rec
        assert st.injected_at is not None
        st.recovered_at = iso(at)
        st.recovery_seconds = seconds_between(st.injected_at, st.recovered_at)
        self.deps.metrics.recovered(self.demo.spec.fault.action, st.recovery_seconds)
        rec.set("Recovered", "True", "AllInvariantsHold",
                f"every invariant held for {self.demo.spec.timeouts.stability_seconds}s; recovered "
                f"{st.recovery_seconds}s after the injection")
        st.message = f"recovered in {st.recovery_seconds}s"
        st.observers = with_ours(st, st.observers)
        await rec.save()
        await rec.event("Normal", "Recovered", st.message)
        await self.diagnosis.finish()


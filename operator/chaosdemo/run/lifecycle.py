"""The lifecycle of one ChaosDemo, stage by stage, resumable from its status.

    preflight -> target -> inject -> watch (detect, then recover) -> report
                                        \\-> diagnose (concurrently, never blocking recovery)

Everything the run decides is written to status before it acts, so an
operator that restarts mid-run reads the status and carries on: it never
injects twice and always finishes the recovery wait. The decisions of the
watch are made by the pure ``watch.step``; this module fetches, calls it and
acts. No kopf here: the handler module calls ``DemoRun.run`` from a daemon and
``cleanup`` from the deletion handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import aiohttp

from chaosdemo.api import conditions as cond
from chaosdemo.api.errors import AbortDemo, DemoFailed, PreflightFailed, Unavailable
from chaosdemo.api.models import ChaosDemoSpec, ChaosDemoStatus, InjectionRecord, TargetStatus
from chaosdemo.api.timestamps import iso, parse_iso, seconds_between
from chaosdemo.clients.docker import DockerClient
from chaosdemo.clients.kube import KubeClient
from chaosdemo.clients.metrics import Metrics
from chaosdemo.clients.pd import PDClient
from chaosdemo.core.evidence import record_pods
from chaosdemo.core.inbox import Subject, Wakeup, WatchJournal, cluster_subject, node_subject
from chaosdemo.core.invariants import InvariantConfig
from chaosdemo.core.snapshot import Snapshot
from chaosdemo.core.step import Detected, Failed, Recovered, RestoreNow, WatchPlan, WatchState, step
from chaosdemo.core.targeting import select_target
from chaosdemo.run.crashpoints import never
from chaosdemo.run.diagnosis import DiagnosisJob, collect_evidence, diagnose
from chaosdemo.run.faults import Fault, FaultFactory, fault_for, ground_truth
from chaosdemo.run.observer import Observer
from chaosdemo.run.preflight import check_blast_radius, check_cluster_exists, check_snapshot, hold_cluster, lease_name
from chaosdemo.run.settings import Settings
from chaosdemo.run.status_record import Record, verdict

if TYPE_CHECKING:  # the SDK is imported only when a key is set (wiring)
    from chaosdemo.clients.claude import ClaudeDiagnoser

__all__ = ["DemoRun", "Deps", "cleanup"]

log = logging.getLogger(__name__)


@dataclass
class Deps:
    """Everything a run talks to, created at the edge and injected."""

    kube: KubeClient
    settings: Settings
    journal: WatchJournal = field(default_factory=WatchJournal)
    claude: ClaudeDiagnoser | None = None
    docker: DockerClient | None = None
    pd_session: aiohttp.ClientSession | None = None  # shared by every demo's PDClient; None: one per demo
    faults: FaultFactory = fault_for
    clock: Callable[[], float] = time.time
    crash: Callable[[str], None] = never  # crashpoints: testing only
    metrics: Metrics = field(default_factory=Metrics)


class DemoRun:
    def __init__(self, deps: Deps, namespace: str, name: str) -> None:
        self.deps, self.namespace, self.name = deps, namespace, name
        self.state = WatchState()
        self.last_snapshot: Snapshot | None = None
        self.cursor: int | None = None
        self.inv_cfg = InvariantConfig(heartbeat_stale_seconds=deps.settings.heartbeat_stale_seconds)

    @property
    def _target(self) -> TargetStatus:
        assert self.status.target is not None
        return self.status.target

    # ------------------------------------------------------------ entry point

    async def run(self) -> None:
        body = await self.deps.kube.get_demo(self.namespace, self.name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return
        self.rec = Record(self.deps.kube, body, self.deps.clock, self.deps.crash)
        self.status, self.generation = self.rec.status, self.rec.generation
        self.holder = f"{self.namespace}/{self.name}/{body['metadata'].get('uid', '')}"
        self.spec = ChaosDemoSpec.model_validate(body.get("spec") or {})
        if self.status.conditions and self.status.phase in cond.TERMINAL:
            return
        self.cluster = self.spec.cluster.name
        self.cluster_ns = self.spec.cluster.namespace or self.namespace
        self.fault: Fault | None = None
        self.pd: PDClient | None = None
        self.deps.metrics.in_flight.inc()
        try:
            await self._run()
        except AbortDemo as e:
            if self.status.injected_at is None:
                await self._finish(False, "Aborted", self.rec.aborted(e))
            else:  # never "nothing was injected" once something was
                await self._ensure_restored()
                await self._finish(False, e.reason, e.message)
        except DemoFailed as e:
            await self._ensure_restored()
            await self._finish(False, e.reason, e.message)
        finally:
            self.deps.metrics.in_flight.dec()
            if self.pd is not None:
                await self.pd.aclose()

    async def _run(self) -> None:
        if not self.status.conditions:
            now = self.rec.now()
            self.status.conditions = cond.initial_conditions(now, self.generation)
            self.status.started_at = now
            self.status.message = "running preflight checks"
            await self.rec.save()
            await self.rec.event("Normal", "Started", f"preflight of TidbCluster {self.cluster_ns}/{self.cluster}")
        s = self.deps.settings
        injection = self.status.injection
        fresh = injection is None or injection.requested_at is None
        if fresh and not s.may_target(self.namespace, self.cluster_ns):
            raise PreflightFailed(
                f"a ChaosDemo in namespace {self.namespace} may not target TidbCluster {self.cluster_ns}/"
                f"{self.cluster}: the operator allows other namespaces only when listed in its "
                "CHAOSDEMO_TARGET_NAMESPACES (chart value allowedTargetNamespaces)", reason="NamespaceNotAllowed")
        pd_url = s.pd_url(self.cluster, self.cluster_ns, self.spec.cluster.pd_url)
        self.pd = PDClient(pd_url, timeout=s.pd_timeout_seconds, session=self.deps.pd_session)
        self.observer = Observer(self.deps.kube, self.pd, self.cluster, self.cluster_ns, clock=self.deps.clock,
                                 journal=self.deps.journal)
        fault = self.fault = self.deps.faults(self.spec.fault, self.deps.kube, self.deps.docker)
        if fresh:
            await self._preflight(fault)
            if self.spec.dry_run:
                self.rec.set("FaultInjected", "False", "DryRun", "dryRun is set: nothing was injected")
                await self._finish(True, "DryRun", f"dry run: preflight passed and {self._target.pod} "
                                   "would be hit; nothing was injected")
                return
            self.status.injection = InjectionRecord(action=self.spec.fault.action, requested_at=self.rec.now())
            self.rec.set("FaultInjected", "Unknown", "Injecting", f"{self.spec.fault.action} is being injected")
            self.status.message = f"injecting {self.spec.fault.action} into {self._target.pod}"
            await self.rec.save()
            self.deps.crash("before-inject")
        # A fault that took effect before this operator could watch (it restarted
        # mid-demo) is detected from what it left on the target.
        with self.deps.journal.following(self.cluster_ns, self.cluster):
            resumed = self.status.injected_at is not None or await self._inject(fault)
            await self._watch(fault, resumed=resumed)

    # ------------------------------------------------------------ stages

    async def _preflight(self, fault: Fault) -> None:
        kube = self.deps.kube
        check_cluster_exists(await kube.get_tidbcluster(self.cluster_ns, self.cluster), self.cluster_ns, self.cluster)
        await hold_cluster(kube, self.cluster_ns, self.cluster, self.holder, dry_run=self.spec.dry_run)
        self.deps.crash("after-lease")
        snap = await self.observer.snapshot()
        check_snapshot(snap, self.inv_cfg)
        assert self.pd is not None
        await check_blast_radius(self.pd, snap)
        self.state = WatchState(history=record_pods({}, snap))
        self.rec.set("PreflightPassed", "True", "ClusterHealthy",
                  f"{len(snap.pods)} TiKV pods Ready, {len(snap.stores)} stores Up, no unhealthy regions")
        choice = select_target(list(snap.pods), list(snap.stores), self.spec.target, self.cluster, self.cluster_ns)
        self.status.target = TargetStatus(
            pod=choice.pod.name, pod_uid=choice.pod.uid, node=choice.pod.node,
            restart_count=choice.pod.restart_count, store_id=choice.store.id,
            store_address=choice.store.address, selection=choice.selection,
        )
        await fault.check(self.cluster_ns, self.status.target)
        what = f"{choice.pod.name} on node {choice.pod.node}, PD store {choice.store.id} ({choice.selection})"
        self.rec.set("TargetSelected", "True", "TargetChosen", what)
        self.status.message = f"target {choice.pod.name} (store {choice.store.id}) chosen"
        await self.rec.save()
        await self.rec.event("Normal", "TargetSelected", what)

    async def _inject(self, fault: Fault) -> bool:
        """Inject and record it; True if the fault had already taken effect."""
        assert self.status.injection is not None
        started = self.rec.now()
        self.cursor = self.deps.journal.cursor()
        done = await fault.inject(self.cluster_ns, self._target)
        self.deps.crash("after-inject")
        self.status.injection.detail = done.detail
        # A fault found already in effect was injected by an operator that died before recording it:
        # at the latest when the intent was written, which times detection from then, never flattering it.
        self.status.injected_at = (self.status.injection.requested_at or started) if done.already else started
        self.rec.set("FaultInjected", "True", "Injected", done.detail)
        self.rec.set("FailureDetected", "Unknown", "Watching", "watching the invariants")
        self.status.message = f"{done.detail}; watching for the failure"
        await self.rec.save()
        await self.rec.event("Warning", "FaultInjected", done.detail)
        return done.already

    def _plan(self, fault: Fault) -> WatchPlan:
        assert self.status.injected_at is not None
        t = self.spec.timeouts
        return WatchPlan(injected_at=parse_iso(self.status.injected_at), detection_seconds=t.detection_seconds,
                         recovery_seconds=t.recovery_seconds, stability_seconds=t.stability_seconds,
                         target=self._target, restore_after=fault.restore_after, cfg=self.inv_cfg)

    async def _watch(self, fault: Fault, resumed: bool = False) -> None:
        """Detect, then wait for recovery: fetch, let ``watch.step`` decide, act."""
        plan, st, journal = self._plan(fault), self.status, self.deps.journal
        self.state = WatchState(
            detected=st.detected_at is not None, restored=st.injection is not None and st.injection.restored_at
            is not None, resumed=resumed, violations=tuple(st.violations), dropped=st.violations_dropped,
            message=st.message, history=self.state.history)
        self.observer.watch_nodes([self._target.node])
        if fault.watches_node_container:
            self.observer.watch_node_containers(self.deps.docker, [self._target.node])
        s = self.deps.settings
        limit = s.diagnosis_settle_seconds + s.claude_timeout_seconds * (s.claude_max_retries + 1) + 30
        diagnosis = DiagnosisJob(lambda: self._diagnose(fault), limit, self._diagnosis_timed_out)
        if self.state.detected and st.diagnosis is None and self.spec.diagnosis.enabled:
            diagnosis.start()
        if self.cursor is None:
            self.cursor = journal.cursor()
        async with diagnosis:  # cancelled on every way out that does not await it
            with journal.wakeup(self._subjects()) as wake:
                await self._follow(fault, plan, diagnosis, wake)

    async def _follow(self, fault: Fault, plan: WatchPlan, diagnosis: DiagnosisJob, wake: Wakeup) -> None:
        """Look, decide, act, until the demo ends.

        Paced once the failure is detected (its time comes from the watch event, not from a look): a
        look at most every ``look_interval_seconds``, progress written at most every
        ``save_interval_seconds``; detection, a restore and the end are written at once.
        """
        st, s, journal = self.status, self.deps.settings, self.deps.journal
        look_gap, save_gap = min(s.look_interval_seconds, s.poll_seconds), s.save_interval_seconds
        saved_at, unsaved = time.monotonic(), False
        while True:
            wake.clear()  # an event from here on wakes the next look, even one during this look
            assert self.cursor is not None
            events, self.cursor = journal.pod_events_since(self.cursor, self.cluster_ns, self.cluster)
            snap = await self.observer.snapshot()
            self.last_snapshot = snap
            result = step(self.state, plan, events, snap)
            if result.state.message != self.state.message:
                st.message = result.state.message
            self.state = result.state
            # New violations are appended; the bounded timeline drops old ones from the front.
            for v in self.state.violations[len(st.violations) - (self.state.dropped - st.violations_dropped):]:
                self.deps.metrics.breach(v.invariant)
            st.violations, st.violations_dropped = list(self.state.violations), self.state.dropped
            decision = result.decision
            if isinstance(decision, RestoreNow):
                await self._restore(fault)  # writes the whole status
                saved_at, unsaved = time.monotonic(), False
                continue
            if isinstance(decision, Failed):
                self.rec.set("Recovered" if decision.detected else "FailureDetected", "False", decision.reason,
                             "deadline passed")
                await diagnosis.finish()
                raise DemoFailed(decision.message, reason=decision.reason)
            if isinstance(decision, Recovered):
                await self._recovered(decision.at, fault, diagnosis)
                return
            milestone = isinstance(decision, Detected)
            if isinstance(decision, Detected):
                await self._detected(decision)
                if self.spec.diagnosis.enabled:
                    diagnosis.start()
            unsaved = unsaved or result.changed
            now = time.monotonic()
            if unsaved and (milestone or not self.state.detected or now - saved_at >= save_gap):
                await self.rec.save()
                saved_at, unsaved = time.monotonic(), False
            wake.watch(self._subjects())
            timeout = s.poll_seconds if not unsaved else max(0.0, min(s.poll_seconds, saved_at + save_gap - now))
            await wake.wait(timeout, not_before=min(look_gap, timeout) if self.state.detected else 0.0)

    def _subjects(self) -> list[Subject]:
        """What wakes this demo's watch: its cluster's pods and StatefulSet, the nodes it watches."""
        nodes = self.observer.watched_nodes | self.observer.node_containers
        return [cluster_subject(self.cluster_ns, self.cluster), *(node_subject(n) for n in sorted(nodes))]

    async def _detected(self, d: Detected) -> None:
        assert self.status.injected_at is not None
        first, now = d.breaches[0], iso(d.at)
        self.status.detected_at = now
        self.status.detection_seconds = seconds_between(self.status.injected_at, now)
        self.status.detected_by = first.invariant
        self.deps.metrics.detected(self.spec.fault.action, first.invariant, self.status.detection_seconds)
        self.rec.set("FailureDetected", "True", "InvariantBroken", f"{first.invariant}: {first.message}")
        self.rec.set("Recovered", "Unknown", "Waiting", "waiting for every invariant to hold")
        self.status.message = f"detected in {self.status.detection_seconds}s by {first.invariant}"
        if self.spec.diagnosis.enabled:
            self.rec.set("Diagnosed", "Unknown", "Diagnosing", "gathering evidence for the diagnosis")
        else:
            self.rec.set("Diagnosed", "False", "Disabled", "spec.diagnosis.enabled is false")
        await self.rec.event("Warning", "FailureDetected",
                          f"{first.invariant} broke {self.status.detection_seconds}s after injection: {first.message}")

    async def _recovered(self, at: float, fault: Fault, diagnosis: DiagnosisJob) -> None:
        st = self.status
        assert st.injected_at is not None
        st.recovered_at = iso(at)
        st.recovery_seconds = seconds_between(st.injected_at, st.recovered_at)
        self.deps.metrics.recovered(self.spec.fault.action, st.recovery_seconds)
        self.rec.set("Recovered", "True", "AllInvariantsHold",
                  f"every invariant held for {self.spec.timeouts.stability_seconds}s; recovered "
                  f"{st.recovery_seconds}s after the injection")
        st.message = f"recovered in {st.recovery_seconds}s"
        await self.rec.save()
        await self.rec.event("Normal", "Recovered", st.message)
        await diagnosis.finish()
        await fault.recover(self.cluster_ns, self._target)
        await self._finish(True, "Succeeded", f"detected in {st.detection_seconds}s by {st.detected_by}, "
                           f"recovered in {st.recovery_seconds}s{verdict(st.diagnosis)}")

    async def _restore(self, fault: Fault) -> None:
        """Undo the fault now (node-kill: start the node) and record when."""
        assert self.status.injection is not None
        detail = await fault.recover(self.cluster_ns, self._target)
        self.status.injection.restored_at = self.rec.now()
        self.state = replace(self.state, restored=True)
        self.status.message = detail
        await self.rec.save()
        await self.rec.event("Normal", "NodeRestarted" if fault.node_level else "FaultUndone", detail)

    async def _ensure_restored(self) -> None:
        """Whatever ended the demo, never leave a fault in place that must be undone."""
        inj, fault = self.status.injection, self.fault
        if fault is None or fault.restore_after is None or inj is None or self.status.injected_at is None:
            return
        if inj.restored_at is None:
            try:
                await self._restore(fault)
            except Unavailable:
                raise  # Docker did not answer: the run is retried and restores then
            except Exception as e:  # reported here, and retried by the deletion handler
                log.exception("could not undo the fault")
                await self.rec.event("Warning", "RestoreFailed", f"{type(e).__name__}: {e}")

    # ------------------------------------------------------------ diagnosis

    async def _diagnose(self, fault: Fault) -> None:
        try:
            await asyncio.sleep(self.deps.settings.diagnosis_settle_seconds)
            snap = self.last_snapshot or await self.observer.snapshot()
            evidence = await collect_evidence(
                self.deps.kube, snap, started_at=self.status.started_at or self.rec.now(),
                violations=self.status.violations, history=self.state.history,
                container_events=self.state.containers.events, events_limit=self.deps.settings.events_limit)
            d = await diagnose(evidence, claude=self.deps.claude,
                               model=self.spec.diagnosis.model or self.deps.settings.claude_model,
                               truth=ground_truth(fault, self._target), metrics=self.deps.metrics)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a diagnosis must never stop the demo
            log.exception("diagnosis failed")
            self.rec.set("Diagnosed", "False", "DiagnosisError", f"{type(e).__name__}: {e}"[:300])
            await self.rec.save()
            return
        await self.rec.diagnosed(d)

    async def _diagnosis_timed_out(self, limit: float) -> None:
        self.rec.set("Diagnosed", "False", "DiagnosisTimeout", f"no diagnosis within {limit:.0f}s")

    # ------------------------------------------------------------ the end

    async def _finish(self, ok: bool, reason: str, message: str) -> None:
        # Release before the terminal status is written: kopf stops the daemon as soon as it sees it.
        with contextlib.suppress(Exception):
            await self.deps.kube.release_lease(self.cluster_ns, lease_name(self.cluster), self.holder)
        # Counted before the terminal status is written: kopf may cancel the daemon as soon as it sees it.
        self.deps.metrics.ended(self.spec.fault.action, cond.outcome(ok, reason))
        await self.rec.finish(ok, reason, message)


async def cleanup(deps: Deps, body: dict[str, Any]) -> str:
    """A ChaosDemo is being deleted: leave the cluster no worse than the fault itself.

    Pod faults need nothing undone (the StatefulSet recreates the pod); what
    must go is this demo's hold on the cluster, so the next demo can run.
    """
    meta = body.get("metadata", {})
    spec = ChaosDemoSpec.model_validate(body.get("spec") or {})
    status = ChaosDemoStatus.model_validate(body.get("status") or {})
    ns = spec.cluster.namespace or meta.get("namespace", "")
    holder = f"{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid', '')}"
    done = []
    if status.injected_at and status.target is not None:
        # A node that cannot be started yet raises, and the deletion is retried:
        # the finalizer holds until the node is back.
        fault = deps.faults(spec.fault, deps.kube, deps.docker)
        done.append(await fault.recover(ns, status.target))
    await deps.kube.release_lease(ns, lease_name(spec.cluster.name), holder)
    done.append("released the cluster for other demos")
    return "; ".join(done)

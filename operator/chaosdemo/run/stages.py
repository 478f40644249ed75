"""The stages of one demo that may touch its cluster: preflight and target, inject, follow, diagnose, undo, end.

Everything a stage decides is written to status before it acts, so an operator that restarts
mid-run reads the status and carries on: it never injects twice and always finishes the recovery
wait. The decisions are the pure core's (``core/step.py``, ``core/targeting.py``); a stage fetches,
calls them and acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from chaosdemo.api import conditions as cond
from chaosdemo.api.errors import PreflightFailed, RecordRefused, Unavailable
from chaosdemo.api.models import InjectionRecord, TargetStatus
from chaosdemo.clients.pd import PDClient
from chaosdemo.clients.tikv import StoreProbe
from chaosdemo.core.evidence import record_pods
from chaosdemo.core.invariants import InvariantConfig
from chaosdemo.core.sightings import close
from chaosdemo.core.snapshot import Snapshot
from chaosdemo.core.step import WatchState
from chaosdemo.core.targeting import members, select_target
from chaosdemo.run import undo
from chaosdemo.run.agreement import until_tidb_operator_agrees
from chaosdemo.run.casebook import record_case, record_control
from chaosdemo.run.demo import Demo, Progress
from chaosdemo.run.deps import Deps
from chaosdemo.run.diagnosis import DiagnosisJob, collect_evidence, diagnose
from chaosdemo.run.faults import ground_truth
from chaosdemo.run.follow import Follow
from chaosdemo.run.observer import Observer
from chaosdemo.run.preflight import (
    check_blast_radius,
    check_resume,
    check_snapshot,
    checked_cluster,
    hold_cluster,
    lease_name,
    refused_nodes,
)
from chaosdemo.run.status_record import verdict

__all__ = ["Stages", "begin", "finish"]

log = logging.getLogger(__name__)


async def begin(deps: Deps, demo: Demo) -> None:
    """A new demo's first record, and the operator's own check of where it may point (before any client)."""
    st, rec = demo.status, demo.rec
    if not st.conditions:
        now = rec.now()
        st.conditions = cond.initial_conditions(now, rec.generation)
        st.started_at = now
        st.message = "running preflight checks"
        await rec.save()
        await rec.event("Normal", "Started", f"preflight of TidbCluster {demo.cluster_ns}/{demo.cluster}")
    if not deps.settings.may_target(rec.namespace, demo.cluster_ns):
        why = (f"a ChaosDemo in namespace {rec.namespace} may not target TidbCluster {demo.cluster_ns}/"
               f"{demo.cluster}: the operator allows other namespaces only when listed in its "
               "CHAOSDEMO_TARGET_NAMESPACES (chart value allowedTargetNamespaces)")
        if st.injection is None or st.injection.requested_at is None:
            raise PreflightFailed(why, reason="NamespaceNotAllowed")
        # A run that resumes is checked again: its status may have been written by anyone who may patch it.
        raise RecordRefused(f"{why}; nothing was touched", reason="RecordRefused")


async def finish(deps: Deps, demo: Demo, ok: bool, reason: str, message: str) -> None:
    # Release before the terminal status is written: kopf stops the daemon as soon as it sees it.
    with contextlib.suppress(Exception):
        await deps.kube.leases.release(demo.cluster_ns, lease_name(demo.cluster), demo.holder)
    # Counted before the terminal status is written: kopf may cancel the daemon as soon as it sees it.
    deps.metrics.ended(demo.spec.fault.action, cond.outcome(ok, reason))
    demo.status.observers = close(demo.status.observers)
    await demo.rec.finish(ok, reason, message)


def observer_for(deps: Deps, demo: Demo, pd: PDClient) -> Observer:
    """The demo's eyes: Kubernetes through the watch journal, PD, and each store on its own status port."""
    s = deps.settings
    probe = (StoreProbe(deps.pd_session, port=s.store_status_port, timeout=s.store_probe_timeout_seconds)
             if s.store_probe else None)
    return Observer(deps.kube, pd, demo.cluster, demo.cluster_ns, clock=deps.clock, journal=deps.journal,
                    probe=probe)


async def end_dry_run(deps: Deps, demo: Demo, preflight: Snapshot | None) -> None:
    if preflight is not None:
        await record_control(deps, demo, preflight)
    demo.rec.set("FaultInjected", "False", "DryRun", "dryRun is set: nothing was injected")
    await finish(deps, demo, True, "DryRun",
                 f"dry run: preflight passed and {demo.target.pod} would be hit; nothing was injected")


class Stages:
    """The stages, in order (``run``), over the clients this demo needs: its PD, an observer, its fault."""

    def __init__(self, deps: Deps, demo: Demo, progress: Progress) -> None:
        s = deps.settings
        self.deps, self.demo, self.progress = deps, demo, progress
        self.inv_cfg = InvariantConfig(heartbeat_stale_seconds=s.heartbeat_stale_seconds)
        self.pd_url = s.pd_url(demo.cluster, demo.cluster_ns, demo.spec.cluster.pd_url)  # a refused URL: Aborted
        self.fault = deps.faults(demo.spec.fault, deps.kube, deps.docker)
        self.pd = PDClient(self.pd_url, timeout=s.pd_timeout_seconds, session=deps.pd_session,
                           max_body=s.pd_max_body_bytes)
        self.observer = observer_for(deps, demo, self.pd)

    async def run(self) -> None:
        st, rec, spec = self.demo.status, self.demo.rec, self.demo.spec
        if st.injection is None or st.injection.requested_at is None:
            await self.preflight()
            if spec.dry_run:
                await end_dry_run(self.deps, self.demo, self.progress.last_snapshot)
                return
            st.injection = InjectionRecord(action=spec.fault.action, requested_at=rec.now())
            rec.set("FaultInjected", "Unknown", "Injecting", f"{spec.fault.action} is being injected")
            st.message = f"injecting {spec.fault.action} into {self.demo.target.pod}"
            await rec.save()
            self.deps.crash("before-inject")
        else:  # resumed from the status: what it names is confirmed from the cluster before anything is touched
            await check_resume(self.deps.kube, self.deps.settings, self.demo.cluster_ns, self.demo.cluster,
                               st.target, self.pd_url, through_node=self.fault.watches_node_container)
        # A fault that took effect before this operator could watch (it restarted mid-demo) is seen from its trace.
        with self.deps.journal.following(self.demo.cluster_ns, self.demo.cluster):
            resumed = st.injected_at is not None or await self.inject()
            await self.follow(resumed)
        await self.fault.recover(self.demo.cluster_ns, self.demo.target)
        await until_tidb_operator_agrees(self.deps, self.demo, self.observer)
        await finish(self.deps, self.demo, True, "Succeeded", f"detected in {st.detection_seconds}s by "
                     f"{st.detected_by}, recovered in {st.recovery_seconds}s{verdict(st.diagnosis)}")

    async def preflight(self) -> None:
        demo, rec, kube = self.demo, self.demo.rec, self.deps.kube
        tidbcluster = await checked_cluster(kube, self.deps.settings, demo.cluster_ns, demo.cluster, self.pd_url)
        await hold_cluster(kube, demo.cluster_ns, demo.cluster, demo.holder, dry_run=demo.spec.dry_run)
        self.deps.crash("after-lease")
        snap = self.progress.last_snapshot = await self.observer.snapshot()
        check_snapshot(snap, self.inv_cfg)
        await check_blast_radius(self.pd, snap)
        self.progress.watch = WatchState(history=record_pods({}, snap))
        rec.set("PreflightPassed", "True", "ClusterHealthy",
                f"{len(snap.pods)} TiKV pods Ready, {len(snap.stores)} stores Up, no unhealthy regions")
        tc_uid = str((tidbcluster.get("metadata") or {}).get("uid", ""))
        own = members(snap.pods, snap.statefulset, demo.cluster, tc_uid)
        if len(own) < len(snap.pods):
            strays = sorted({p.name for p in snap.pods} - {p.name for p in own})
            log.warning("pods with TiKV labels that TidbCluster %s does not own are never targets: %s",
                        demo.cluster, ", ".join(strays[:10]))
        refused = (await refused_nodes(kube, replace(snap, pods=tuple(own)), self.deps.settings.node_name)
                   if self.fault.node_level else {})
        choice = select_target(own, list(snap.stores), demo.spec.target, demo.cluster, demo.cluster_ns,
                               refused_nodes=refused)
        demo.status.target = TargetStatus(
            pod=choice.pod.name, pod_uid=choice.pod.uid, node=choice.pod.node,
            restart_count=choice.pod.restart_count, store_id=choice.store.id,
            store_address=choice.store.address, selection=choice.selection,
        )
        await self.fault.check(demo.cluster_ns, demo.status.target)
        what = f"{choice.pod.name} on node {choice.pod.node}, PD store {choice.store.id} ({choice.selection})"
        rec.set("TargetSelected", "True", "TargetChosen", what)
        demo.status.message = f"target {choice.pod.name} (store {choice.store.id}) chosen"
        await rec.save()
        await rec.event("Normal", "TargetSelected", what)

    async def inject(self) -> bool:
        """Inject and record it; True if the fault had already taken effect."""
        st, rec = self.demo.status, self.demo.rec
        assert st.injection is not None
        await undo.record(self.deps, self.demo, self.fault)  # the operator's own word, kept until undone
        started = rec.now()
        self.progress.cursor = self.deps.journal.cursor()
        done = await self.fault.inject(self.demo.cluster_ns, self.demo.target)
        self.deps.crash("after-inject")
        st.injection.detail = done.detail
        # A fault found already in effect was injected by an operator that died before recording it:
        # at the latest when the intent was written, which times detection from then, never flattering it.
        st.injected_at = (st.injection.requested_at or started) if done.already else started
        rec.set("FaultInjected", "True", "Injected", done.detail)
        rec.set("FailureDetected", "Unknown", "Watching", "watching the invariants")
        st.message = f"{done.detail}; watching for the failure"
        await rec.save()
        await rec.event("Warning", "FaultInjected", done.detail)
        return done.already

    async def follow(self, resumed: bool) -> None:
        s = self.deps.settings
        limit = s.diagnosis_settle_seconds + s.claude_timeout_seconds * (s.claude_max_retries + 1) + 30
        job = DiagnosisJob(self.diagnose, limit, self.diagnosis_timed_out)
        await Follow(self.deps, self.demo, self.progress, self.observer, self.fault, inv_cfg=self.inv_cfg,
                     restore=self.restore, diagnosis=job).until_recovered(resumed)

    async def restore(self) -> None:
        """Undo the fault now (node-kill: start the node) and record when."""
        st, rec = self.demo.status, self.demo.rec
        assert st.injection is not None
        detail = await self.fault.recover(self.demo.cluster_ns, self.demo.target)
        await undo.forget(self.deps, self.demo.holder)
        st.injection.restored_at = rec.now()
        self.progress.watch = replace(self.progress.watch, restored=True)
        st.message = detail
        await rec.save()
        await rec.event("Normal", "NodeRestarted" if self.fault.node_level else "FaultUndone", detail)

    async def ensure_restored(self) -> None:
        """Whatever ended the demo, never leave a fault in place that must be undone."""
        st, due = self.demo.status, self.fault.restore_after is not None
        if not (due and st.injection and st.injected_at and not st.injection.restored_at):
            return
        try:
            await self.restore()
        except Unavailable:
            raise  # Docker did not answer: the run is retried and restores then
        except Exception as e:  # reported here, retried by the deletion handler and the undo ledger
            log.exception("could not undo the fault")
            await self.demo.rec.event("Warning", "RestoreFailed", f"{type(e).__name__}: {e}")

    async def diagnose(self) -> None:
        demo, s = self.demo, self.deps.settings
        try:
            await asyncio.sleep(s.diagnosis_settle_seconds)
            snap = self.progress.last_snapshot or await self.observer.snapshot()
            evidence = await collect_evidence(
                self.deps.kube, snap, started_at=demo.status.started_at or demo.rec.now(),
                violations=demo.status.violations, history=self.progress.watch.history,
                container_events=self.progress.watch.containers.events, events_limit=s.events_limit)
            truth = ground_truth(self.fault, demo.target)
            record_case(self.deps, demo, evidence, truth)
            d = await diagnose(evidence, claude=self.deps.claude, model=demo.spec.diagnosis.model or s.claude_model,
                               truth=truth, metrics=self.deps.metrics)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a diagnosis must never stop the demo
            log.exception("diagnosis failed")
            demo.rec.set("Diagnosed", "False", "DiagnosisError", f"{type(e).__name__}: {e}"[:300])
            await demo.rec.save()
            return
        await demo.rec.diagnosed(d)

    async def diagnosis_timed_out(self, limit: float) -> None:
        self.demo.rec.set("Diagnosed", "False", "DiagnosisTimeout", f"no diagnosis within {limit:.0f}s")

    async def aclose(self) -> None:
        await self.pd.aclose()
        await self.observer.aclose()

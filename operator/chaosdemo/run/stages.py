"""The stages of one demo that may touch its cluster: begin, preflight and target, inject, follow, end.

Everything a stage decides is told to the record (``core/story.py``) and saved before it acts, so an
operator that restarts mid-run reads the status and carries on: it never injects twice and always
finishes the recovery wait. The decisions are the pure core's (``core/step.py``, ``core/targeting.py``);
a stage fetches, asks them, acts, and tells what happened.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace

from chaosdemo.api import conditions as cond
from chaosdemo.api.errors import FaultUnavailable, PreflightFailed, RecordRefused, TargetError, Unavailable
from chaosdemo.api.models import TargetStatus
from chaosdemo.core.history import remember_pods
from chaosdemo.core.step import WatchState
from chaosdemo.core.story import DryRunEnded, Happening, Injected, Requested, Started, TargetChosen, UndoFailed
from chaosdemo.core.story import Succeeded as SucceededStory
from chaosdemo.core.targeting import members, select_target
from chaosdemo.run import undo
from chaosdemo.run.casebook import log_control
from chaosdemo.run.cluster_tls import secure
from chaosdemo.run.demo import Demo
from chaosdemo.run.deps import Deps
from chaosdemo.run.felt import judge, mark, open_canary
from chaosdemo.run.follow import follow, undo_now
from chaosdemo.run.preflight import (
    check_blast_radius,
    check_resume,
    check_snapshot,
    checked_cluster,
    hold_cluster,
    lease_name,
    look_past_reload,
    pd_leader_target,
    pd_target_moved,
    refused_nodes,
)
from chaosdemo.run.state import RunState

__all__ = ["begin", "end", "ensure_undone", "run_stages"]

log = logging.getLogger(__name__)


async def begin(deps: Deps, demo: Demo) -> None:
    """A new demo's first record, and the operator's own check of where it may point (before any client)."""
    st = demo.status
    await demo.rec.tell(Started(f"{demo.cluster_ns}/{demo.cluster}"), save=not st.conditions)
    model = demo.spec.diagnosis.model
    if not deps.settings.may_use(model) and (st.injection is None or st.injection.requested_at is None):
        raise PreflightFailed(f"spec.diagnosis.model {model!r} is not one this operator may use: "
                              f"{', '.join(sorted({deps.settings.claude_model, *deps.settings.allowed_models}))} "
                              "(chart value claude.allowedModels)", reason="ModelNotAllowed")
    if not deps.settings.may_target(demo.rec.namespace, demo.cluster_ns):
        why = (f"a ChaosDemo in namespace {demo.rec.namespace} may not target TidbCluster {demo.cluster_ns}/"
               f"{demo.cluster}: the operator allows other namespaces only when listed in its "
               "CHAOSDEMO_TARGET_NAMESPACES (chart value allowedTargetNamespaces)")
        if st.injection is None or st.injection.requested_at is None:
            raise PreflightFailed(why, reason="NamespaceNotAllowed")
        # A run that resumes is checked again: its status may have been written by anyone who may patch it.
        raise RecordRefused(f"{why}; nothing was touched", reason="RecordRefused")


async def end(deps: Deps, demo: Demo, happened: Happening) -> None:
    """The demo's last story: the cluster let go and the end counted first, then the terminal status.

    kopf stops the daemon as soon as it sees a terminal status, so that is written last.
    """
    with contextlib.suppress(Exception):
        await deps.kube.leases.release(demo.cluster_ns, lease_name(demo.cluster), demo.holder)
    story = demo.rec.told(happened)
    summary = cond.get(story.status.conditions, "Succeeded")
    deps.metrics.ended(demo.spec.fault.action, cond.outcome(summary is not None and summary.status == "True",
                                                            summary.reason if summary else ""))
    await demo.rec.publish(story)


async def run_stages(rs: RunState) -> None:
    st, spec, deps = rs.status, rs.demo.spec, rs.deps
    await secure(rs)  # spec.tlsCluster of the TidbCluster: PD and the stores over TLS, or refused here
    if st.injection is None or st.injection.requested_at is None:
        await preflight(rs)
        if spec.dry_run:
            if rs.progress.last_snapshot is not None:
                await log_control(deps, rs.demo, rs.progress.last_snapshot)
            await end(deps, rs.demo, DryRunEnded(rs.target.pod))
            return
        await recheck_pd_leader(rs)
        await rs.rec.tell(Requested(spec.fault.action))
        deps.crash("before-inject")
    else:  # resumed from the status: what it names is confirmed from the cluster before anything is touched
        await check_resume(deps.kube, deps.settings, rs.demo.cluster_ns, rs.demo.cluster, st.target, rs.pd_url,
                           through_node=rs.fault.watches_node_container)
        await recheck_blast_radius(rs)
        if spec.canary.enabled and rs.status.recovered_at is None:
            snap = await rs.observer.snapshot()  # PD may not have answered its stores: the pods count them then
            await open_canary(rs, len(snap.stores) or len(snap.pods), resumed=True)
    # A fault that took effect before this operator could watch (it restarted mid-demo) is seen from its trace.
    with deps.journal.following(rs.demo.cluster_ns, rs.demo.cluster):
        resumed = rs.status.injected_at is not None or await inject(rs)
        await follow(rs, resumed)
    await judge(rs)  # what TiDB's clients felt, held against the budget (spec.canary)
    await end(deps, rs.demo, SucceededStory())


async def preflight(rs: RunState) -> None:
    demo, kube, deps = rs.demo, rs.deps.kube, rs.deps
    tidbcluster = await checked_cluster(kube, deps.settings, demo.cluster_ns, demo.cluster, rs.pd_url)
    await hold_cluster(kube, demo.cluster_ns, demo.cluster, demo.holder, dry_run=demo.spec.dry_run)
    deps.crash("after-lease")
    snap = await look_past_reload(rs.observer.snapshot, await rs.observer.snapshot(), rs.inv_cfg)
    rs.progress.last_snapshot = snap
    check_snapshot(snap, rs.inv_cfg)
    await check_blast_radius(rs.pd, snap)
    rs.progress.watch = WatchState(history=remember_pods({}, snap))
    tc_uid = str((tidbcluster.get("metadata") or {}).get("uid", ""))
    own = members(snap.pods, snap.statefulset, demo.cluster, tc_uid)
    if len(own) < len(snap.pods):
        strays = sorted({p.name for p in snap.pods} - {p.name for p in own})
        log.warning("pods with TiKV labels that TidbCluster %s does not own are never targets: %s",
                    demo.cluster, ", ".join(strays[:10]))
    if demo.spec.target.role == "pd-leader":
        choice = await pd_leader_target(kube, rs.pd, snap, demo.spec.fault.action, tc_uid)
    else:
        refused = (await refused_nodes(kube, replace(snap, pods=tuple(own)), deps.settings.node_name)
                   if rs.fault.node_level else {})
        choice = select_target(own, list(snap.stores), demo.spec.target, demo.cluster, demo.cluster_ns,
                               refused_nodes=refused)
    target = TargetStatus(component="pd" if choice.store is None else "tikv", pod=choice.pod.name,
                          pod_uid=choice.pod.uid, node=choice.pod.node, restart_count=choice.pod.restart_count,
                          store_id=choice.store.id if choice.store else "",
                          store_address=choice.store.address if choice.store else "", pd_member=choice.pd_member,
                          selection=choice.selection, role=demo.spec.target.role or "")
    await rs.fault.check(demo.cluster_ns, target)
    await rs.rec.tell(TargetChosen(len(snap.pods), len(snap.stores), target))
    await open_canary(rs, len(snap.stores), resumed=False)  # spec.canary: its baseline, judged


async def recheck_pd_leader(rs: RunState) -> None:
    """A PD leader is asked for again just before the injection, its quorum counted again: the canary's
    baseline ran since it was chosen, and PD's leader may have moved, or a member gone (TargetError: Aborted,
    nothing injected)."""
    t = rs.status.target
    if t is None or t.component != "pd" or rs.fault.expected_class == "no-fault":
        return
    tc = await rs.deps.kube.cluster.get_tidbcluster(rs.demo.cluster_ns, rs.demo.cluster)
    uid = str(((tc or {}).get("metadata") or {}).get("uid", ""))
    now = await pd_leader_target(rs.deps.kube, rs.pd, await rs.observer.snapshot(), rs.demo.spec.fault.action, uid)
    why = pd_target_moved(t, now)
    if why:
        raise TargetError(f"{why}; nothing was injected", reason="PDLeaderMoved")


async def recheck_blast_radius(rs: RunState) -> None:
    """A node-kill resumed before its injection asks again who is on the node: pods may have come since."""
    st = rs.status
    if not rs.fault.node_level or st.injected_at is not None or st.target is None:
        return
    why = (await refused_nodes(rs.deps.kube, await rs.observer.snapshot(), rs.deps.settings.node_name)
           ).get(st.target.node)
    if not why:
        return
    try:
        await rs.fault.check(rs.demo.cluster_ns, st.target)
    except FaultUnavailable:
        return  # the node is down already: the fault took effect, and the run carries on to undo it
    raise TargetError(f"refusing to kill node {st.target.node} on resume: {why}", reason="NodeKillRefused")


async def inject(rs: RunState) -> bool:
    """Inject and tell it; True if the fault had already taken effect."""
    st = rs.status
    assert st.injection is not None
    await undo.enter(rs.deps, rs.demo, rs.fault)  # the operator's own word, kept until undone
    await mark(rs, rs.target.store_id)  # the SQL canary's rows on that store, recorded first
    started = rs.rec.now()
    rs.progress.cursor = rs.deps.journal.cursor()
    done = await rs.fault.inject(rs.demo.cluster_ns, rs.target)
    rs.deps.crash("after-inject")
    # A fault found already in effect was injected by an operator that died before recording it:
    # at the latest when the intent was written, which times detection from then, never flattering it.
    at = (st.injection.requested_at or started) if done.already else started
    await rs.rec.tell(Injected(done.detail, at))
    return done.already


async def ensure_undone(rs: RunState) -> None:
    """Whatever ended the demo, never leave a fault in place that must be undone."""
    st = rs.status
    if not (rs.fault.undo_after is not None and st.injection and st.injected_at and not st.injection.undone_at):
        return
    try:
        await undo_now(rs)
    except Unavailable:
        raise  # Docker did not answer: the run is retried and undoes it then
    except Exception as e:  # reported here, retried by the deletion handler and the undo ledger
        log.exception("could not undo the fault")
        await rs.rec.tell(UndoFailed(f"{type(e).__name__}: {e}"), save=False)

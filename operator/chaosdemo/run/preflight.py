"""Preflight: never inject into a cluster that is already hurt.

The TidbCluster must exist, PD must answer, and every invariant must hold.
Any failure raises ``PreflightFailed`` with the reason, and the demo ends
Aborted with nothing injected. No other demo may be active on the cluster:
each demo holds the cluster's Lease (``chaosdemo-<cluster>``) from its
preflight to its end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chaosdemo.api.conditions import TERMINAL
from chaosdemo.api.errors import Forbidden, PreflightFailed, RecordRefused
from chaosdemo.api.models import PD_LEADER_ACTIONS, TargetStatus
from chaosdemo.api.settings import Settings
from chaosdemo.clients.kube import KubeClient
from chaosdemo.clients.pd import PDClient
from chaosdemo.core.addresses import service_of
from chaosdemo.core.invariants import InvariantConfig, evaluate, pd_reachable, pd_view_reloading
from chaosdemo.core.pd_moves import minority_down
from chaosdemo.core.snapshot import Snapshot, pd_leader_from, statefulset_from_api
from chaosdemo.core.targeting import (
    TargetChoice,
    members,
    others_on_node,
    select_pd_leader,
    target_statefulset,
    why_names_refused,
    why_node_refused,
    why_pd_service_refused,
    why_record_refused,
)

__all__ = [
    "check_blast_radius",
    "check_cluster_exists",
    "check_pd_service",
    "check_record",
    "check_snapshot",
    "granted_tidbcluster",
    "hold_cluster",
    "lease_name",
    "look_past_reload",
    "pd_leader_target",
    "pd_target_moved",
    "quorum_after_losing_one",
    "refused_nodes",
]

log = logging.getLogger(__name__)


def lease_name(cluster: str) -> str:
    return f"chaosdemo-{cluster}"


async def hold_cluster(kube: KubeClient, namespace: str, cluster: str, holder: str, *, dry_run: bool) -> None:
    """Take the cluster's Lease for ``holder`` (``ns/name/uid`` of the demo), or refuse: ClusterBusy.

    A Lease left by a demo that has ended or no longer exists is taken over.
    A dry run injects nothing, so it only checks that no demo holds the cluster.
    """
    name = lease_name(cluster)
    if dry_run:
        other = await kube.leases.holder(namespace, name)
    else:
        other = await kube.leases.acquire(namespace, name, holder)
    if other is None:
        return
    ons, oname, ouid = [*other.split("/"), "", "", ""][:3]
    obody = await kube.demos.get(ons, oname)
    still_active = (
        obody is not None
        and obody.get("metadata", {}).get("uid") == ouid
        and (obody.get("status") or {}).get("phase") not in TERMINAL
    )
    if not still_active and dry_run:
        return
    if still_active or not await kube.leases.take_over(namespace, name, other, holder):
        raise PreflightFailed(
            f"ChaosDemo {ons}/{oname} is already running against TidbCluster {namespace}/{cluster}; "
            "one fault at a time",
            reason="ClusterBusy",
        )


async def granted_tidbcluster(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The TidbCluster, read with the operator's rights in its namespace; Aborted if it holds none there."""
    try:
        return await kube.cluster.get_tidbcluster(namespace, name)
    except Forbidden as e:
        raise PreflightFailed(
            f"the operator holds no rights in namespace {namespace} ({e.message}); an administrator grants them "
            "by listing the namespace in the chart's targetNamespaces", reason="OperatorNotPermitted") from e


async def check_pd_service(kube: KubeClient, settings: Settings, namespace: str, url: str,
                           tidbcluster: dict[str, Any] | None) -> None:
    """Refuse a PD URL whose Service is not the TidbCluster's own (PDServiceRefused), before anything is fetched.

    An operator's template that names no Service of the namespace (the local tier's) is the
    administrator's choice and is not checked.
    """
    service = service_of(url, namespace, settings.cluster_domain)
    if not service or tidbcluster is None:
        return
    meta = tidbcluster.get("metadata") or {}
    name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
    why = why_pd_service_refused(await kube.cluster.get_service(namespace, service), service, name, uid)
    if why:
        raise PreflightFailed(f"PD is reached only through TidbCluster {namespace}/{name}'s own PD Service: {why}; "
                              "nothing was fetched from it", reason="PDServiceRefused")


async def checked_cluster(kube: KubeClient, settings: Settings, namespace: str, name: str,
                          pd_url: str) -> dict[str, Any]:
    """The TidbCluster, once the operator may act in its namespace, it exists and ``pd_url`` is its own PD."""
    tidbcluster = await granted_tidbcluster(kube, namespace, name)
    check_cluster_exists(tidbcluster, namespace, name)
    assert tidbcluster is not None
    await check_pd_service(kube, settings, namespace, pd_url, tidbcluster)
    return tidbcluster


def check_cluster_exists(tidbcluster: dict[str, object] | None, namespace: str, name: str) -> None:
    if tidbcluster is None:
        raise PreflightFailed(
            f"TidbCluster {namespace}/{name} does not exist", reason="ClusterNotFound"
        )


def reload_wait(cfg: InvariantConfig) -> float:
    """How long the preflight looks again while PD's view is reloading: two heartbeat bounds."""
    return 2 * cfg.heartbeat_stale_seconds


async def look_past_reload(look: Callable[[], Awaitable[Snapshot]], snapshot: Snapshot, cfg: InvariantConfig,
                           *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                           clock: Callable[[], float] = time.monotonic) -> Snapshot:
    """While PD is electing a leader (its members answer "no leader", ``core.pd_moves``), its view of the
    stores is reloading (``pd_view_reloading``: PD restarted or its leader moved), or a minority of its members
    is restarting, look again, so that none of these is refused as a sick cluster: up to two heartbeat bounds,
    plus PD's election grace once an election is seen, or a member's restart grace while one is down; past
    that a breach is the cluster's. The last look either way."""
    first = clock()
    elected = snapshot.pd_leaderless

    def waiting() -> bool:
        now = clock() - first
        if minority_down(snapshot) and now < cfg.pd_member_restart_grace_seconds:
            return True
        if now >= reload_wait(cfg) + (cfg.pd_election_grace_seconds if elected else 0):
            return False
        return (snapshot.pd_leaderless or bool(pd_view_reloading(snapshot, cfg))
                or (elected and bool(evaluate(snapshot, cfg))))

    seen = ("PD was electing a leader" if elected else "a PD member was down" if minority_down(snapshot)
            else pd_view_reloading(snapshot, cfg))
    while waiting():
        await sleep(min(1.0, cfg.heartbeat_stale_seconds / 5))
        snapshot = await look()
        elected = elected or snapshot.pd_leaderless
    if seen:
        log.info("%s/%s: %s; looked again for %.1fs: %s", snapshot.namespace, snapshot.cluster, seen,
                 clock() - first, "still so" if snapshot.pd_leaderless or pd_view_reloading(snapshot, cfg)
                 or minority_down(snapshot) else "PD has a leader, all its members, and has heard every store")
    return snapshot


def check_snapshot(snapshot: Snapshot, cfg: InvariantConfig) -> None:
    if snapshot.pd_error:
        raise PreflightFailed(f"PD is not reachable: {snapshot.pd_error}", reason="PDUnreachable")
    if snapshot.pd_unread:
        missing = "; ".join(b.message for b in pd_reachable(snapshot, cfg))
        raise PreflightFailed(f"PD answered only part of the look, so the cluster's health is not known: {missing}",
                              reason="PDUnreachable")
    if not snapshot.pods:
        raise PreflightFailed(
            f"TidbCluster {snapshot.namespace}/{snapshot.cluster} has no TiKV pods",
            reason="NoTiKVPods",
        )
    breaches = evaluate(snapshot, cfg)
    reloading = pd_view_reloading(snapshot, cfg)
    if breaches and reloading:
        raise PreflightFailed(
            f"the cluster's health is not known: {reloading}, and PD still had not heard them after waiting "
            f"{reload_wait(cfg):g}s (two heartbeat bounds)", reason="ClusterUnhealthy")
    if breaches:
        shown = "; ".join(b.message for b in breaches[:5])
        more = f" (and {len(breaches) - 5} more)" if len(breaches) > 5 else ""
        raise PreflightFailed(
            f"cluster is already unhealthy, refusing to inject: {shown}{more}",
            reason="ClusterUnhealthy",
        )


def quorum_after_losing_one(max_replicas: int, stores_up: int) -> str:
    """Why losing one more TiKV store would take a region below quorum, or '' if it would not (pure).

    A Raft region of ``max_replicas`` peers needs a majority; with one store gone
    each region that had a peer on it keeps ``max_replicas - 1``. Fewer Up stores
    than replicas means regions are already missing peers.
    """
    if stores_up < max_replicas:
        return (f"only {stores_up} TiKV stores are Up for {max_replicas} replicas: regions are already missing "
                "peers, and one more store down could take them below quorum")
    if max_replicas - 1 < max_replicas // 2 + 1:
        return (f"PD keeps {max_replicas} replica(s) of each region: losing the target's store leaves "
                f"{max_replicas - 1}, below the quorum of {max_replicas // 2 + 1}; the data would be unavailable")
    return ""


async def check_blast_radius(pd: PDClient, snapshot: Snapshot) -> None:
    """Refuse a fault that would take any region below quorum (PD's max-replicas against the Up stores)."""
    replicas = int((await pd.replication()).get("max-replicas", 3))
    up = sum(1 for s in snapshot.stores if s.state_name == "Up")
    why = quorum_after_losing_one(replicas, up)
    if why:
        raise PreflightFailed(f"refusing to inject: {why}", reason="BelowQuorum")


async def check_record(kube: KubeClient, namespace: str, cluster: str, target: TargetStatus | None, *,
                       through_node: bool) -> None:
    """On resume, confirm from the cluster what the status says the run is about to touch; RecordRefused if not.

    The names are checked before anything is read with them; then the TidbCluster, its TiKV (or PD) StatefulSet,
    the pod and (for a fault that acts through the node) the Node, each as the API server has them.
    """
    why = "the status names no target" if target is None else why_names_refused(target, cluster, through_node)
    if not why and target is not None:
        tidbcluster = await kube.cluster.get_tidbcluster(namespace, cluster)
        statefulset = await kube.cluster.get_statefulset(namespace, target_statefulset(target, cluster))
        pod = await kube.cluster.get_pod(namespace, target.pod)
        node = await kube.cluster.get_node(target.node) if through_node else None
        why = why_record_refused(target, cluster, tidbcluster=tidbcluster, statefulset=statefulset, pod=pod,
                                 node=node, node_level=through_node)
    if why:
        raise RecordRefused(f"the demo's status names a target the cluster does not confirm: {why}; "
                            "nothing was touched", reason="RecordRefused")


async def check_resume(kube: KubeClient, settings: Settings, namespace: str, cluster: str,
                       target: TargetStatus | None, pd_url: str, *, through_node: bool) -> None:
    """A resumed run's checks: its record (``check_record``), then its rights and PD (``checked_cluster``)."""
    await check_record(kube, namespace, cluster, target, through_node=through_node)
    await checked_cluster(kube, settings, namespace, cluster, pd_url)


async def refused_nodes(kube: KubeClient, snapshot: Snapshot, operator_node: str) -> dict[str, str]:
    """For node-kill: each node of a TiKV pod that may not be killed, and why (the Node read; PD's pods as the
    snapshot listed them)."""
    refused = {}
    for node in sorted({p.node for p in snapshot.pods if p.node}):
        obj = await kube.cluster.get_node(node)
        why = why_node_refused(
            node, labels=((obj or {}).get("metadata") or {}).get("labels") or {},
            tikv_on_node=sum(1 for p in snapshot.pods if p.node == node),
            pd_on_node=[p.name for p in snapshot.pd_pods if p.node == node],
            pd_members=snapshot.pd_members if snapshot.pd_answered("health") else None,
            operator_node=operator_node, cluster=snapshot.cluster, namespace=snapshot.namespace,
            others=others_on_node(await kube.cluster.pods_on_node(node), snapshot.namespace))
        if why:
            refused[node] = why
    return refused


async def pd_leader_target(kube: KubeClient, pd: PDClient, snapshot: Snapshot, action: str,
                           tidbcluster_uid: str) -> TargetChoice:
    """``target.role: pd-leader``: the PD pod that leads PD now, by PD's own word (``/members``), among the
    TidbCluster's own PD pods, with PD's quorum counted without it (``select_pd_leader``)."""
    if action not in PD_LEADER_ACTIONS:
        raise PreflightFailed(f"target.role pd-leader hits one PD pod or its process: fault.action {action} is not "
                              f"one of {', '.join(PD_LEADER_ACTIONS)}", reason="ActionNotForPD")
    cluster, namespace = snapshot.cluster, snapshot.namespace
    sts = await kube.cluster.get_statefulset(namespace, f"{cluster}-pd")
    own = members(snapshot.pd_pods, statefulset_from_api(sts) if sts else None, cluster, tidbcluster_uid)
    leader = pd_leader_from(await pd.members())
    return select_pd_leader(own, leader, snapshot.pd_members if snapshot.pd_answered("health") else None,
                            cluster, namespace)


def pd_target_moved(chosen: TargetStatus, now: TargetChoice) -> str:
    """Why the PD leader chosen is no longer the one to hit (another member leads, or its pod was replaced),
    or '' (pure)."""
    if now.pd_member != chosen.pd_member:
        return (f"PD's leader moved from {chosen.pd_member} to {now.pd_member[:120]} since the target was chosen: "
                "the target is no longer PD's leader")
    if now.pod.uid != chosen.pod_uid:
        return f"PD's leader pod {chosen.pod} was replaced since the target was chosen (uid {now.pod.uid})"
    return ""

"""Target selection: which TiKV pod gets the fault and which PD store that is, or which PD pod leads PD.

Pure: takes the pods and stores seen in preflight, returns the choice or
refuses with a reason. The random choice sorts pods by name first, so a seed
gives the same pod on every run against the same cluster.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaosdemo.api.errors import TargetError
from chaosdemo.api.models import TargetSpec, TargetStatus
from chaosdemo.core.addresses import pd_member_pod, pod_name_of_store
from chaosdemo.core.snapshot import PodState, StatefulSetState, StoreState

__all__ = ["CONTROL_PLANE_LABELS", "NODE_AGENT_NAMESPACES", "TargetChoice", "members", "others_on_node", "owned_by",
           "select_pd_leader", "select_target", "target_statefulset", "why_names_refused",
           "why_node_refused", "why_pd_service_refused", "why_record_refused"]

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


@dataclass(frozen=True)
class TargetChoice:
    pod: PodState
    store: StoreState | None  # None for a PD member
    selection: str
    pd_member: str = ""  # the PD member's name, as PD gives it (a PD target)


def select_target(
    pods: Sequence[PodState],
    stores: Sequence[StoreState],
    spec: TargetSpec,
    cluster: str,
    namespace: str,
    rng: random.Random | None = None,
    refused_nodes: Mapping[str, str] | None = None,
) -> TargetChoice:
    """The target: the pod named, or a random one (seeded if asked) among those on no refused node.

    ``refused_nodes`` (node-kill) maps a node to why killing it would take down more than one store.
    """
    by_name = {p.name: p for p in pods}
    names = sorted(by_name)
    if not names:
        raise TargetError(f"TidbCluster {namespace}/{cluster} has no TiKV pods", reason="NoTiKVPods")
    refused = refused_nodes or {}
    if spec.pod:
        if spec.pod not in by_name:
            raise TargetError(
                f"pod {spec.pod} is not a TiKV pod of TidbCluster {namespace}/{cluster} "
                f"(its TiKV pods are {', '.join(names)})",
                reason="TargetNotTiKV",
            )
        why = refused.get(by_name[spec.pod].node)
        if why:
            raise TargetError(f"refusing to kill node {by_name[spec.pod].node} of pod {spec.pod}: {why}",
                              reason="NodeKillRefused")
        chosen, how = by_name[spec.pod], "named in spec.target.pod"
    elif not (names := [n for n in names if by_name[n].node not in refused]):
        reasons = "; ".join(f"{node}: {why}" for node, why in sorted(refused.items()))
        raise TargetError(f"no TiKV pod's node may be killed: {reasons}", reason="NodeKillRefused")
    elif spec.role == "most-leaders":
        chosen, how = _most_leaders([by_name[n] for n in names], stores, cluster, namespace)
        how += _excluding(refused)
    elif spec.seed is not None:
        chosen = by_name[random.Random(spec.seed).choice(names)]
        how = f"random with seed {spec.seed} among {len(names)} TiKV pods" + _excluding(refused)
    else:
        chosen = by_name[(rng or random.SystemRandom()).choice(names)]
        how = f"random among {len(names)} TiKV pods" + _excluding(refused)
    store = next((s for s in stores if pod_name_of_store(s.address, cluster, namespace) == chosen.name), None)
    if store is None:
        raise TargetError(
            f"pod {chosen.name} has no store in PD (expected address "
            f"{chosen.name}.{cluster}-tikv-peer.{namespace}.svc:20160)",
            reason="TargetHasNoStore",
        )
    return TargetChoice(pod=chosen, store=store, selection=how)


def _most_leaders(pods: Sequence[PodState], stores: Sequence[StoreState], cluster: str,
                  namespace: str) -> tuple[PodState, str]:
    """The pod whose store holds the most region leaders in PD's view (the lowest pod name among equals), and
    what PD said: the store whose loss costs TiDB's clients most, as TiDB's own drills pick it."""
    led = {pod_name_of_store(s.address, cluster, namespace): s for s in stores}
    ranked = sorted((p for p in pods if p.name in led), key=lambda p: (-led[p.name].leader_count, p.name))
    if not ranked:
        raise TargetError(f"no TiKV pod of TidbCluster {namespace}/{cluster} has a store in PD to rank by its "
                          "leaders", reason="TargetHasNoStore")
    top = led[ranked[0].name]
    total = sum(led[p.name].leader_count for p in ranked)
    ties = [p.name for p in ranked[1:] if led[p.name].leader_count == top.leader_count]
    said = ", ".join(f"store {led[p.name].id}: {led[p.name].leader_count}" for p in ranked[:8])
    return ranked[0], (f"role most-leaders: store {top.id} led {top.leader_count} of the {total} region leaders "
                       f"in PD when chosen ({said})" + (f"; tied with {', '.join(ties)}, first by name" if ties
                                                        else ""))


def select_pd_leader(pd_pods: Sequence[PodState], leader: str, health: Sequence[tuple[str, bool]] | None,
                     cluster: str, namespace: str) -> TargetChoice:
    """The PD pod that leads PD (``target.role: pd-leader``), from PD's own word, or TargetError.

    ``pd_pods`` are the TidbCluster's own PD pods (``members`` of its PD StatefulSet), ``leader`` the member
    /pd/api/v1/members names as leader, ``health`` PD's /health as (member, healthy), None when unread. PD's
    quorum is counted as the node-kill guard counts it: the leader goes, and the healthy members left must
    still be a majority of all members, or the demo is refused (a single PD member is always refused).
    """
    where = f"TidbCluster {namespace}/{cluster}"
    if not leader:
        raise TargetError(f"PD of {where} names no leader: there is no PD leader to hit", reason="NoPDLeader")
    if health is None:
        raise TargetError(f"PD of {where} did not say which of its members are healthy, so its quorum without "
                          f"its leader cannot be counted", reason="PDQuorumAtRisk")
    pod_name = pd_member_pod(leader, cluster, namespace)
    by_name = {p.name: p for p in pd_pods}
    if pod_name is None or pod_name not in by_name:
        raise TargetError(f"PD's leader {leader[:120]!r} is none of the PD pods of {where} "
                          f"({', '.join(sorted(by_name)) or 'none'})", reason="TargetNotPD")
    healthy = [name for name, ok in health if ok]
    quorum = len(health) // 2 + 1
    left = len([name for name in healthy if name != leader])
    if left < quorum:
        raise TargetError(f"hitting PD's leader {pod_name} would leave {left} of {len(health)} PD members healthy, "
                          f"below PD's quorum of {quorum}: PD could elect no new leader", reason="PDQuorumAtRisk")
    pod = by_name[pod_name]
    if pod.deleting or not pod.ready:
        raise TargetError(f"PD's leader pod {pod_name} is {'terminating' if pod.deleting else 'not Ready'}",
                          reason="TargetNotReady")
    return TargetChoice(pod=pod, store=None, pd_member=leader,
                        selection=(f"role pd-leader: PD member {leader[:120]} led PD when chosen; {len(healthy)} of "
                                   f"{len(health)} members healthy, {left} left without it (quorum {quorum})"))


def owned_by(obj: dict[str, Any] | None, kind: str, name: str, uid: str) -> bool:
    """Whether ``obj`` has a controlling owner reference to exactly this object (kind, name and uid)."""
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == kind and r.get("name") == name and r.get("uid") == uid and r.get("controller")
               for r in refs)


def target_statefulset(target: TargetStatus, cluster: str) -> str:
    """The StatefulSet the target's pod belongs to: ``<cluster>-tikv``, or ``<cluster>-pd`` for a PD target."""
    return f"{cluster}-{'pd' if target.component == 'pd' else 'tikv'}"


def why_names_refused(target: TargetStatus, cluster: str, node_level: bool) -> str:
    """Why the names a status gives are not a TiKV pod's of this cluster (a PD pod's, for a PD target), or a
    node's, or '' (pure).

    Checked before anything is read from the API server with them.
    """
    sts = target_statefulset(target, cluster)
    if not target.pod:
        return "the status names no target"
    if re.fullmatch(rf"{re.escape(sts)}-\d+", target.pod) is None:
        return f"{target.pod[:80]!r} is not a pod name of StatefulSet {sts}"
    if node_level and re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", target.node) is None:
        return f"{target.node[:80]!r} is not a node name"
    return ""


def why_record_refused(target: TargetStatus | None, cluster: str, *, tidbcluster: dict[str, Any] | None,
                       statefulset: dict[str, Any] | None, pod: dict[str, Any] | None,
                       node: dict[str, Any] | None, node_level: bool) -> str:
    """Why a resumed run must not act on the target its status names, or '' (pure).

    Status is written by whoever may patch it, so on resume what is about to be touched is checked
    against the cluster itself: the pod is a member of the TiKV (or PD) StatefulSet that the TidbCluster
    controls (while it exists: a deleted pod may not be back yet), and for a node-level fault the node is
    a Node of this cluster, the pod's own node, and not the control plane.
    """
    if target is None:
        return "the status names no target"
    why = why_names_refused(target, cluster, node_level)
    if why:
        return why
    sts = target_statefulset(target, cluster)
    if tidbcluster is None:
        return f"TidbCluster {cluster} does not exist"
    tc_uid = str((tidbcluster.get("metadata") or {}).get("uid", ""))
    if statefulset is None or not owned_by(statefulset, "TidbCluster", cluster, tc_uid):
        return f"StatefulSet {sts} is missing or not controlled by TidbCluster {cluster}"
    sts_uid = str((statefulset.get("metadata") or {}).get("uid", ""))
    if pod is not None and not owned_by(pod, "StatefulSet", sts, sts_uid):
        return f"pod {target.pod} is not controlled by StatefulSet {sts}"
    if not node_level:
        return ""
    pod_node = str(((pod or {}).get("spec") or {}).get("nodeName", ""))
    if pod is not None and pod_node != target.node:
        return f"node {target.node[:80]!r} is not the node of pod {target.pod} ({pod_node or 'none'})"
    if node is None:
        return f"{target.node[:80]!r} is not a Node of this Kubernetes cluster"
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(label in labels for label in CONTROL_PLANE_LABELS):
        return f"node {target.node} is the Kubernetes control plane"
    return ""


def _excluding(refused: Mapping[str, str]) -> str:
    return f" (not on {', '.join(sorted(refused))}, which node-kill may not take down)" if refused else ""


NODE_AGENT_NAMESPACES = frozenset({"kube-system"})  # the node's own agents (kube-proxy, CNI): they come back with it


def others_on_node(pods: Sequence[dict[str, Any]], namespace: str) -> list[str]:
    """The running pods on a node that are not the demo's to take down: of another namespace than its cluster's,
    neither a DaemonSet's (one per node, back with the node) nor a node agent of kube-system (pure)."""
    out = []
    for p in pods:
        meta, status = p.get("metadata") or {}, p.get("status") or {}
        ns = str(meta.get("namespace", ""))
        if ns == namespace or ns in NODE_AGENT_NAMESPACES or status.get("phase") in ("Succeeded", "Failed"):
            continue
        if any(r.get("kind") == "DaemonSet" and r.get("controller") for r in meta.get("ownerReferences") or []):
            continue
        out.append(f"{ns}/{meta.get('name', '')}"[:120])
    return sorted(out)


def why_node_refused(node: str, *, labels: Mapping[str, str], tikv_on_node: int, pd_on_node: Sequence[str],
                     pd_members: Sequence[tuple[str, bool]] | None, operator_node: str, cluster: str,
                     namespace: str, others: Sequence[str] = ()) -> str:
    """Why killing this whole node would take down more than the one store a demo may take, or '' (pure).

    The quorum guard counts one lost store; a node with two stores, PD members whose loss breaks PD's
    quorum, the control plane, the operator's own node, or pods of anyone else (``others_on_node``: the
    effect is node-wide, the right to it was checked in one namespace) is refused outright.
    ``pd_members`` is PD's /health as (member name, healthy), None when PD did not answer it; members are
    matched to the PD pods on the node however tidb-operator named them (``pd_member_pod``), and a PD pod
    that matches no member, or members that could not be read, refuse the node: PD's quorum cannot be counted.
    """
    if any(label in labels for label in CONTROL_PLANE_LABELS):
        return "it runs the Kubernetes control plane"
    if operator_node and node == operator_node:
        return "it runs this operator, which would not be there to start it again"
    if others:
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        return f"it runs pods of other namespaces ({', '.join(others[:3])}{more}), which the demo may not take down"
    if tikv_on_node > 1:
        return f"it hosts {tikv_on_node} TiKV stores of the cluster; a demo takes one"
    return _pd_quorum_lost(sorted(pd_on_node), pd_members, cluster, namespace)


def _pd_quorum_lost(pd_on_node: list[str], pd_members: Sequence[tuple[str, bool]] | None,
                    cluster: str, namespace: str) -> str:
    if not pd_on_node:
        return ""
    if pd_members is None:
        return (f"it hosts PD pod(s) {', '.join(pd_on_node)} and PD did not say which of its members are healthy, "
                "so PD's quorum cannot be counted")
    pods = {name: pd_member_pod(name, cluster, namespace) for name, _ in pd_members}
    unknown = [p for p in pd_on_node if p not in pods.values()]
    if unknown:
        return (f"it hosts PD pod(s) {', '.join(unknown)} that match none of the members PD names "
                f"({', '.join(sorted(pods)[:3])[:200]}), so PD's quorum cannot be counted")
    healthy = [name for name, ok in pd_members if ok]  # a member of another Kubernetes cluster counts, unmatched
    quorum = len(pd_members) // 2 + 1
    lost = [p for p in pd_on_node if any(pods[name] == p for name in healthy)]
    if len(healthy) - len(lost) < quorum:
        return (f"it hosts PD member(s) {', '.join(lost)}: {len(healthy) - len(lost)} of "
                f"{len(pd_members)} PD members would be left, below PD's quorum of {quorum}")
    return ""


def why_pd_service_refused(service: dict[str, Any] | None, name: str, cluster: str, tidbcluster_uid: str) -> str:
    """Why the Service a PD URL names is not the TidbCluster's own way to its PD, or '' (pure).

    A Service of the namespace is written by whoever may create one there: an ExternalName Service is
    DNS to anywhere, and any other Service may lead to any pod. Only a Service that the TidbCluster
    controls (tidb-operator's ``<cluster>-pd``) is trusted as PD.
    """
    if service is None:
        return f"Service {name} does not exist"
    if (service.get("spec") or {}).get("type") == "ExternalName":
        return f"Service {name} is an ExternalName Service (DNS to anywhere)"
    if not owned_by(service, "TidbCluster", cluster, tidbcluster_uid):
        return f"Service {name} is not controlled by TidbCluster {cluster}"
    return ""


def members(pods: Sequence[PodState], statefulset: StatefulSetState | None, cluster: str,
            tidbcluster_uid: str) -> list[PodState]:
    """The TiKV pods that are the TidbCluster's own: controlled by its TiKV StatefulSet, which it controls.

    Pods are found by their labels, which anyone who may create a pod in the namespace can copy; only
    these may be chosen or named as the target.
    """
    if statefulset is None or statefulset.owner != f"TidbCluster/{cluster}/{tidbcluster_uid}":
        return []
    return [p for p in pods if p.owner == f"StatefulSet/{statefulset.name}/{statefulset.uid}"]

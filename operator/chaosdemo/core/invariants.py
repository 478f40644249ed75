"""Named invariants of a healthy TidbCluster: pure functions over a snapshot.

Each invariant returns the breaches it sees (empty when it holds). They are
listed in ``INVARIANTS`` from the fastest signal to the slowest, so that when
several break in the same snapshot the fastest honest one is credited with
the detection: Kubernetes readiness changes within milliseconds of a pod's
deletion, PD only calls a store Disconnected 20 s after its last heartbeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chaosdemo.api.models import TargetStatus
from chaosdemo.core.addresses import pod_name_of_store
from chaosdemo.core.scrub import clip
from chaosdemo.core.snapshot import REGION_CHECKS, PodState, Snapshot

__all__ = [
    "INVARIANTS",
    "Breach",
    "Invariant",
    "InvariantConfig",
    "evaluate",
    "kind_node_containers_running",
    "kube_nodes_ready",
    "pd_members_healthy",
    "pd_reachable",
    "pd_regions_healthy",
    "pd_store_heartbeats_fresh",
    "pd_stores_up",
    "pd_target_breaches",
    "pd_view_reloading",
    "pod_event_breaches",
    "target_changed",
    "tikv_pods_ready",
    "tikv_statefulset_ready",
    "tikv_stores_answer",
]


@dataclass(frozen=True)
class Breach:
    """One invariant broken on one subject. Subject and message carry text from PD and the cluster, so
    each is cut to a bound here, once, before it can reach status, events or the prompt."""

    invariant: str
    subject: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", clip(self.subject, MAX_SUBJECT))
        object.__setattr__(self, "message", clip(self.message, MAX_MESSAGE))


MAX_SUBJECT, MAX_MESSAGE = 253, 300


@dataclass(frozen=True)
class InvariantConfig:
    # TiKV heartbeats every 10 s; a heartbeat older than this is a missed one (1 s for jitter).
    heartbeat_stale_seconds: float = 11.0
    # A PD without a leader this long is not electing one any more (``core.pd_moves``): about 4 s is usual,
    # requests were held up to 8 s (TiKV issue 12794), the stand-in's kind cluster took 7 s.
    pd_election_grace_seconds: float = 15.0
    # A minority of PD members unhealthy this long is not a restart any more (a pod recreated, its start script,
    # its etcd member rejoining from its data: 10-30 s on kind): a sick cluster (``core.pd_moves``).
    pd_member_restart_grace_seconds: float = 60.0


Check = Callable[[Snapshot, InvariantConfig], list[Breach]]


@dataclass(frozen=True)
class Invariant:
    name: str
    description: str
    check: Check


def kind_node_containers_running(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    """Docker's own state of the kind nodes: the fastest signal that a machine died."""
    name = "kind-node-containers-running"
    return [
        Breach(name, c.name, f"kind node container {c.name} is not running (exit code {c.exit_code})")
        for c in s.node_containers
        if not c.running
    ]


def _pod_unready(pod: PodState, invariant: str = "tikv-pods-ready", what: str = "pod") -> list[Breach]:
    """``invariant`` (``tikv-pods-ready`` unless said) on one pod: terminating or not Ready."""
    if pod.deleting:
        return [Breach(invariant, pod.name, f"{what} {pod.name} is terminating")]
    if not pod.ready:
        return [Breach(invariant, pod.name, f"{what} {pod.name} is not Ready (phase {pod.phase})")]
    return []


def tikv_pods_ready(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    name = "tikv-pods-ready"
    out = [b for p in s.pods for b in _pod_unready(p)]
    if s.statefulset is not None:
        have = {p.name for p in s.pods}
        for i in range(s.statefulset.replicas):
            want = f"{s.statefulset.name}-{i}"
            if want not in have:
                out.append(Breach(name, want, f"pod {want} does not exist"))
    return out


def pod_event_breaches(event_type: str, pod: PodState) -> list[Breach]:
    """``tikv-pods-ready`` judged on one watch event, as it arrives."""
    if event_type == "DELETED":
        return [Breach("tikv-pods-ready", pod.name, f"pod {pod.name} was deleted")]
    return _pod_unready(pod)


def target_changed(s: Snapshot, pod: str, uid: str, restarts: int, component: str = "tikv") -> list[Breach]:
    """What a fault left behind on its target, for an operator that was down when it happened."""
    now = s.pod(pod)
    if now is None:
        return [Breach(f"{component}-pod-replaced", pod, f"pod {pod} (uid {uid}) is gone")]
    if now.uid != uid:
        return [Breach(f"{component}-pod-replaced", pod, f"pod {pod} was replaced: uid {uid} became {now.uid}")]
    if now.restart_count > restarts:
        return [Breach(f"{component}-container-restarted", pod,
                       f"pod {pod} restarted its containers ({restarts} -> {now.restart_count} restarts)")]
    return []


def tikv_statefulset_ready(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    name = "tikv-statefulset-ready"
    sts = s.statefulset
    if sts is None:
        return [Breach(name, f"{s.cluster}-tikv", "the TiKV StatefulSet does not exist")]
    if sts.ready_replicas < sts.replicas:
        return [
            Breach(
                name,
                sts.name,
                f"StatefulSet {sts.name} has {sts.ready_replicas}/{sts.replicas} ready replicas",
            )
        ]
    return []


def kube_nodes_ready(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    name = "kube-nodes-ready"
    hosting = {p.node for p in s.pods if p.node}
    return [
        Breach(name, n.name, f"node {n.name} is not Ready ({n.ready}: {n.reason or 'no reason'})")
        for n in s.nodes
        if n.name in hosting and n.ready != "True"
    ]


def tikv_stores_answer(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    """The database's own side, asked directly: each Ready TiKV pod's store answers on its status port.
    A stopped process is seen here while Kubernetes still calls its pod Ready."""
    return [Breach("tikv-stores-answer", pod, f"the store of {pod} does not answer: {why}")
            for pod, why in s.store_answers if why]


def pd_reachable(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    """PD answered the look; each read it did not answer, while it answered others, is a breach of its own."""
    if s.pd_error:
        return [Breach("pd-reachable", "pd", f"PD did not answer: {s.pd_error}")]
    return [Breach("pd-reachable", f"pd/{read}", f"PD answered only part of the look: {why}"
                   + (" (real PD asks every member in turn, 3 s each: a slow or dead PD member holds it up)"
                      if read == "health" else ""))
            for read, why in s.pd_unread]


def pd_store_heartbeats_fresh(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    name = "pd-store-heartbeats-fresh"
    if not s.pd_answered("stores"):
        return []
    out = []
    for st in s.stores:
        if st.state_name in ("Offline", "Tombstone"):
            continue
        age = s.heartbeat_age(st)
        if age > cfg.heartbeat_stale_seconds:
            skew = (f" (on PD's clock, {abs(s.pd_clock_ahead):.0f}s {'ahead of' if s.pd_clock_ahead > 0 else 'behind'}"
                    " the operator's)") if s.pd_clock_ahead else ""
            out.append(Breach(name, f"store-{st.id}", f"store {st.id} last heartbeat {age:.1f}s ago{skew}"))
    return out


def pd_view_reloading(s: Snapshot, cfg: InvariantConfig) -> str:
    """Why the stale heartbeats are PD's view rather than the stores, or '' (pure).

    A PD that restarts, or a new PD leader, reloads store metadata persisted up to 5 minutes earlier
    (tikv/pd ``pkg/core/store.go`` ``storePersistInterval``; ``server/cluster/cluster.go``), so every store
    reads an old ``last_heartbeat``, and Disconnected, until its next heartbeat (TiKV's is every 10 s). A
    fault takes one store, or one node's: every store stale at once, while every store's pod is there and
    Ready and every store asked answers, is that reload.
    """
    live = [st for st in s.stores if st.state_name not in ("Offline", "Tombstone")]
    if len(live) < 2 or not s.pd_answered("stores") or not s.pods:
        return ""
    ages = sorted(s.heartbeat_age(st) for st in live)
    if ages[0] <= cfg.heartbeat_stale_seconds:
        return ""
    pods = [s.pod(pod_name_of_store(st.address, s.cluster, s.namespace) or "") for st in live]
    if not all(p is not None and p.ready and not p.deleting for p in (*pods, *s.pods)):
        return ""  # a store whose pod is gone, not Ready or going away: that is a fault's, or may be
    if any(why for _, why in s.store_answers):
        return ""
    return (f"every store's last heartbeat in PD is stale at once ({ages[0]:.0f}-{ages[-1]:.0f}s ago) while every "
            "TiKV pod is Ready: that is PD's view, not the stores (a PD that restarts or a new PD leader reloads "
            "store metadata saved up to 5 min earlier, and hears each store again at its next heartbeat)")


def pd_stores_up(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    name = "pd-stores-up"
    if not s.pd_answered("stores"):
        return []
    out = [
        Breach(name, f"store-{st.id}", f"store {st.id} ({st.address}) is {st.state_name}")
        for st in s.stores
        if st.state_name != "Up"
    ]
    desired = s.statefulset.replicas if s.statefulset else None
    if desired is not None and len(s.stores) < desired:
        out.append(Breach(name, "stores", f"PD knows {len(s.stores)} TiKV stores, {desired} desired"))
    return out


def pd_regions_healthy(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    name = "pd-regions-healthy"
    if s.pd_error:
        return []
    return [
        Breach(name, check, f"{count} region(s) in PD's {check} check")
        for check in REGION_CHECKS
        if (count := s.region_checks.get(check, 0)) > 0
    ]


def pd_members_healthy(s: Snapshot, cfg: InvariantConfig) -> list[Breach]:
    name = "pd-members-healthy"
    if not s.pd_answered("health"):
        return []
    if not s.pd_members:
        return [Breach(name, "pd", "PD reports no members")]
    return [
        Breach(name, member, f"PD member {member} is unhealthy")
        for member, healthy in s.pd_members
        if not healthy
    ]


def pd_target_breaches(s: Snapshot, target: TargetStatus, *, detected: bool) -> list[Breach]:
    """A PD target's own invariants (``target.role: pd-leader``), judged with the target in hand (pure).

    ``pd-pod-ready``: the target's PD pod exists, is Ready and is not terminating (its replacement counts,
    whatever its uid). ``pd-leader-elected``: until the detection, the member that led PD when the target was
    chosen still leads it (a new leader is the fault seen from PD: its message names who leads now); after it,
    PD has a leader, any member. So that violation clears when PD answers with a leader again, and recovery
    waits for it. A look that did not read PD's members tells nothing of its leader.
    """
    pod = next((p for p in s.pd_pods if p.name == target.pod), None)
    out = ([Breach("pd-pod-ready", target.pod, f"PD pod {target.pod} does not exist")] if pod is None
           else _pod_unready(pod, "pd-pod-ready", "PD pod"))
    if s.pd_leaderless or (s.pd_answered("members") and not s.pd_leader):
        out.append(Breach("pd-leader-elected", target.pod,
                          f"PD has no leader ({target.pd_member} led it when the target was chosen)"))
    elif not detected and s.pd_answered("members") and s.pd_leader != target.pd_member:
        out.append(Breach("pd-leader-elected", target.pod,
                          f"PD's leader moved from {target.pd_member} to {s.pd_leader}"))
    return out


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("kind-node-containers-running", "every watched kind node container is running",
              kind_node_containers_running),
    Invariant("tikv-pods-ready", "every TiKV pod exists, is Ready and is not terminating", tikv_pods_ready),
    Invariant("tikv-statefulset-ready", "the TiKV StatefulSet has all replicas ready", tikv_statefulset_ready),
    Invariant("kube-nodes-ready", "every node hosting a TiKV pod is Ready", kube_nodes_ready),
    Invariant("tikv-stores-answer", "every Ready TiKV store answers on its own status port", tikv_stores_answer),
    Invariant("pd-reachable", "PD's HTTP API answers", pd_reachable),
    Invariant("pd-store-heartbeats-fresh", "every store heartbeated recently", pd_store_heartbeats_fresh),
    Invariant("pd-stores-up", "every TiKV store is Up in PD", pd_stores_up),
    Invariant("pd-regions-healthy", "no down, pending, missing or offline peers", pd_regions_healthy),
    Invariant("pd-members-healthy", "every PD member is healthy", pd_members_healthy),
)


def evaluate(
    snapshot: Snapshot, cfg: InvariantConfig, invariants: Sequence[Invariant] = INVARIANTS
) -> list[Breach]:
    """All breaches in the snapshot, fastest invariant first."""
    out: list[Breach] = []
    for inv in invariants:
        out.extend(inv.check(snapshot, cfg))
    return out

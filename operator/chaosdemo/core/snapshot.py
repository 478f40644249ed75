"""A snapshot of one TidbCluster: plain data that the invariants judge.

Snapshots are built from Kubernetes objects and PD answers by the parsers
below (pure) and by ``observation.py`` (I/O). Nothing here talks to anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaosdemo.core.addresses import pod_name_of_store

__all__ = [
    "COMPONENT_LABEL",
    "INSTANCE_LABEL",
    "PD_READS",
    "REGION_CHECKS",
    "SKEW_SHOWN",
    "TIKV_LABELS",
    "NodeContainer",
    "NodeState",
    "PodState",
    "Snapshot",
    "StatefulSetState",
    "StoreState",
    "TidbOperatorState",
    "node_from_api",
    "pd_clock_ahead",
    "pd_leader_from",
    "pd_members_from",
    "pd_selector",
    "pod_from_api",
    "restart_count",
    "statefulset_from_api",
    "stores_from_pd",
    "tidb_operator_from_api",
    "tikv_selector",
]

REGION_CHECKS = ("down-peer", "pending-peer", "miss-peer", "offline-peer")
# One look's reads of PD, by the name a partial view gives them (``Snapshot.pd_unread``).
PD_READS = ("stores", "health", "members", *(f"regions/check/{c}" for c in REGION_CHECKS))

# tidb-operator's labels: a TiKV pod carries both, the instance being the TidbCluster's name.
COMPONENT_LABEL = "app.kubernetes.io/component"
INSTANCE_LABEL = "app.kubernetes.io/instance"
TIKV_LABELS = {COMPONENT_LABEL: "tikv"}


def pd_selector(cluster: str) -> str:
    return f"{COMPONENT_LABEL}=pd,{INSTANCE_LABEL}={cluster}"


def tikv_selector(cluster: str) -> str:
    """The label selector of one TidbCluster's TiKV pods."""
    return f"{COMPONENT_LABEL}=tikv,{INSTANCE_LABEL}={cluster}"


def restart_count(pod: dict[str, Any]) -> int:
    """Restarts of all of a pod's containers, from its API object."""
    return sum(int(c.get("restartCount", 0)) for c in (pod.get("status") or {}).get("containerStatuses") or [])


@dataclass(frozen=True)
class PodState:
    name: str
    uid: str
    node: str
    phase: str
    ready: bool
    deleting: bool
    restart_count: int
    created: str = ""
    reason: str = ""
    owner: str = ""  # its controller, as Kind/name/uid: a TiKV pod's is the StatefulSet
    ip: str = ""  # status.podIP, where the store's own status port is asked


@dataclass(frozen=True)
class StatefulSetState:
    name: str
    replicas: int
    ready_replicas: int
    current_replicas: int
    updated_replicas: int
    uid: str = ""
    owner: str = ""  # its controller, as Kind/name/uid: the TidbCluster


@dataclass(frozen=True)
class StoreState:
    id: str
    address: str
    state_name: str
    last_heartbeat_ns: int
    leader_count: int
    region_count: int


@dataclass(frozen=True)
class TidbOperatorState:
    """tidb-operator's status of the TidbCluster: its Ready condition, and the store state it copied per pod."""

    ready: str  # the Ready condition's status: "True", "False", "Unknown"
    reason: str = ""
    stores: tuple[tuple[str, str], ...] = ()  # (pod name, state)

    def store_of(self, pod: str) -> str:
        return next((state for name, state in self.stores if name == pod), "")


def tidb_operator_from_api(tc: dict[str, Any] | None) -> TidbOperatorState | None:
    """None when the TidbCluster has no Ready condition yet (no tidb-operator status to read)."""
    status = (tc or {}).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return None
    stores = ((status.get("tikv") or {}).get("stores") or {}).values()
    return TidbOperatorState(str(ready.get("status", "Unknown"))[:10], str(ready.get("reason", ""))[:80],
                             tuple(sorted((str(s.get("podName", ""))[:253], str(s.get("state", ""))[:40])
                                          for s in list(stores)[:50])))


@dataclass(frozen=True)
class NodeState:
    name: str
    ready: str  # "True", "False" or "Unknown", as the Ready condition says
    reason: str = ""


@dataclass(frozen=True)
class NodeContainer:
    """Docker's view of a kind node container."""

    name: str
    running: bool
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0


@dataclass(frozen=True)
class Snapshot:
    """What the operator saw of the cluster at ``taken_at`` (epoch seconds)."""

    taken_at: float
    cluster: str
    namespace: str
    pods: tuple[PodState, ...] = ()
    pd_pods: tuple[PodState, ...] = ()  # the pods with PD's labels (a PD target is one of them)
    statefulset: StatefulSetState | None = None
    stores: tuple[StoreState, ...] = ()
    region_checks: dict[str, int] = field(default_factory=dict)
    pd_members: tuple[tuple[str, bool], ...] = ()
    pd_error: str = ""  # PD answered none of the look's reads: why
    # The reads PD did not answer while it answered others (read name, why): each read stands on its own, so a
    # /health that a slow or dead PD member holds up costs that read, never the stores' view.
    pd_unread: tuple[tuple[str, str], ...] = ()
    # Some read was answered by a PD member that knows no leader ("no leader", or a redirect to a leader that
    # is gone): PD is electing one, which real PD takes seconds to do (``core.pd_moves``).
    pd_leaderless: bool = False
    pd_leader: str = ""  # the member /members names as PD's leader ('' when none, or not read)
    nodes: tuple[NodeState, ...] = ()
    node_containers: tuple[NodeContainer, ...] = ()
    # Each asked store's answer on its own status port: pod name -> '' (answered) or why not. Empty when
    # the stores were not asked (the operator's store probe is off).
    store_answers: tuple[tuple[str, str], ...] = ()
    tidb_operator: TidbOperatorState | None = None  # None: not read, or no status yet
    # How far PD's clock is ahead of the operator's (negative: behind), from PD's Date header, when the two
    # differ by more than that header's one-second grain can hide (``pd_clock_ahead``); 0 otherwise.
    pd_clock_ahead: float = 0.0

    def pod(self, name: str) -> PodState | None:
        """The TiKV pod, or PD pod, of that name (the two StatefulSets' names never meet)."""
        return next((p for p in (*self.pods, *self.pd_pods) if p.name == name), None)

    def heartbeat_age(self, store: StoreState) -> float:
        """Seconds since the store's last heartbeat, on PD's clock (which stamped it) at this look."""
        return self.taken_at + self.pd_clock_ahead - store.last_heartbeat_ns / 1e9

    def pd_answered(self, read: str) -> bool:
        """Whether this look has PD's answer to ``read`` (one of ``PD_READS``)."""
        return not self.pd_error and all(name != read for name, _ in self.pd_unread)


SKEW_SHOWN = 2.0  # seconds: PD's Date header is whole seconds, so a smaller difference is not told apart


def pd_clock_ahead(date_ahead: float | None) -> float:
    """PD's clock ahead of ours, as heartbeat ages are judged: PD stamps each heartbeat on its own clock, so
    a skew between PD's node and the operator's would add to every age one for one (pure). ``date_ahead`` is
    PD's Date header minus our clock when it arrived (None: no usable header); under ``SKEW_SHOWN``, or over a
    day (no clock is that wrong; the header is), it is taken as 0. The header is truncated to the second, so
    the estimate is low by up to a second: ages come out younger, never older, than they are."""
    if date_ahead is None or abs(date_ahead) < SKEW_SHOWN or abs(date_ahead) > 86400:
        return 0.0
    return date_ahead


def _ready(conditions: list[dict[str, Any]] | None, kind: str = "Ready") -> str:
    for c in conditions or []:
        if c.get("type") == kind:
            return str(c.get("status", "Unknown"))
    return "Unknown"


def pod_from_api(pod: dict[str, Any]) -> PodState:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    return PodState(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        node=spec.get("nodeName") or "",
        phase=status.get("phase") or "Pending",
        ready=_ready(status.get("conditions")) == "True",
        deleting=bool(meta.get("deletionTimestamp")),
        restart_count=restart_count(pod),
        created=str(meta.get("creationTimestamp") or ""),
        reason=status.get("reason") or "",
        owner=controller_of(pod),
        ip=str(status.get("podIP") or ""),
    )


def controller_of(obj: dict[str, Any]) -> str:
    """The object's controlling owner as Kind/name/uid, or ''."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    ref = next((r for r in refs if isinstance(r, dict) and r.get("controller")), None)
    return f"{ref.get('kind', '')}/{ref.get('name', '')}/{ref.get('uid', '')}" if ref else ""


def statefulset_from_api(sts: dict[str, Any]) -> StatefulSetState:
    spec, status = sts.get("spec", {}), sts.get("status", {})
    return StatefulSetState(
        name=sts.get("metadata", {}).get("name", ""),
        replicas=int(spec.get("replicas", 1)),
        ready_replicas=int(status.get("readyReplicas") or 0),
        current_replicas=int(status.get("currentReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        uid=str(sts.get("metadata", {}).get("uid", "")),
        owner=controller_of(sts),
    )


def node_from_api(node: dict[str, Any]) -> NodeState:
    conds = node.get("status", {}).get("conditions") or []
    reason = next((c.get("reason", "") for c in conds if c.get("type") == "Ready"), "")
    return NodeState(name=node.get("metadata", {}).get("name", ""), ready=_ready(conds), reason=reason)


MAX_ADDRESS = 253 + len(":20160")
MAX_ID, MAX_STATE, MAX_MEMBER_NAME, MAX_PD_MEMBERS = 20, 40, 128, 16


def pd_members_from(health: list[dict[str, Any]]) -> tuple[tuple[str, bool], ...]:
    """PD's ``GET /pd/api/v1/health`` as (member name, healthy), names and count bounded where they are read:
    a tenant's PD writes them, and they reach invariants, evidence and status."""
    return tuple((str(m.get("name", ""))[:MAX_MEMBER_NAME], bool(m.get("health"))) for m in health[:MAX_PD_MEMBERS])


def pd_leader_from(members: dict[str, Any]) -> str:
    """The leader PD's ``GET /pd/api/v1/members`` names, bounded where it is read ('' when it names none)."""
    leader = members.get("leader")
    name = leader.get("name", "") if isinstance(leader, dict) else ""
    return name[:MAX_MEMBER_NAME] if isinstance(name, str) else ""


def stores_from_pd(payload: dict[str, Any], cluster: str, namespace: str) -> tuple[StoreState, ...]:
    """Parse PD's ``GET /pd/api/v1/stores`` answer, keeping this cluster's TiKV stores.

    PD omits ``state`` when it is Up (protobuf omitempty), so ``state_name`` is
    the field to read; it also says Disconnected and Down for stores that are
    still Up in PD's metadata.
    """
    stores = []
    for entry in payload.get("stores") or []:
        store, status = entry.get("store", {}), entry.get("status", {})
        address = str(store.get("address", ""))
        # A DNS name is at most 253 characters: a longer address is no store of this cluster's.
        if len(address) > MAX_ADDRESS or pod_name_of_store(address, cluster, namespace) is None:
            continue
        stores.append(
            StoreState(
                id=str(store.get("id", ""))[:MAX_ID],
                address=address,
                state_name=str(store.get("state_name", "Up"))[:MAX_STATE],
                last_heartbeat_ns=int(store.get("last_heartbeat", 0)),
                leader_count=int(status.get("leader_count", 0)),
                region_count=int(status.get("region_count", 0)),
            )
        )
    return tuple(sorted(stores, key=lambda s: int(s.id) if s.id.isdigit() else 0))

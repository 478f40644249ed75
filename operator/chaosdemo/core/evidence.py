"""The evidence a diagnosis is made from: what was observed, never what was done.

Built (pure) from the snapshots, the pod history and the Kubernetes events the
operator collected. It deliberately carries no field naming the injected
action or target: a diagnosis that could read the answer would prove nothing.
Text that comes from the cluster is truncated and scrubbed of anything that
looks like a credential before it leaves the operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from chaosdemo.api.models import Violation
from chaosdemo.api.timestamps import iso, parse_iso
from chaosdemo.core.addresses import pd_member_pod, pod_name_of_store
from chaosdemo.core.history import MAX_EVENTS, ContainerEvent, Data, PodHistory, PodObservation
from chaosdemo.core.scrub import scrub
from chaosdemo.core.snapshot import PD_READS, Snapshot

__all__ = [
    "ClientRows",
    "Evidence",
    "KubeEvent",
    "NodeEvidence",
    "OperatorStore",
    "StoreEvidence",
    "TidbOperatorView",
    "TimelineEntry",
    "build_evidence",
    "evidence_refs",
]

MAX_STORES = 50
MAX_PD_MEMBERS = 10


class TimelineEntry(Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    invariant: str
    subject: str
    message: str
    first_seen: str
    seconds_after_observation_start: float
    cleared: str = ""


class NodeEvidence(Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    name: str
    ready: str
    reason: str = ""


class StoreEvidence(Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    id: str
    address: str
    pod: str
    state_name: str
    seconds_since_heartbeat: float
    leader_count: int
    region_count: int


class PDMember(Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    name: str
    health: bool
    leader: bool = False  # /pd/api/v1/members names it PD's leader at the last look


class KubeEvent(Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    time: str
    type: str
    reason: str
    object: str
    message: str
    count: str


class ReadyCondition(Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    status: str
    reason: str
    message: str


class OperatorStore(Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    id: str
    pod_name: str
    state: str


class TidbOperatorView(Data):
    """tidb-operator's own status of the cluster: its Ready condition and its map of TiKV stores.

    It still names each pod's store when PD itself cannot be reached.
    """

    ready: ReadyCondition | None = None
    tikv_stores: list[OperatorStore] = Field(default_factory=list)


class ClientRows(Data):
    """TiDB's clients (the SQL canary), on the rows one store led when the fault began: statements that
    succeeded and that failed or timed out since."""

    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    leader_store: str
    ok: int
    failed: int


class Evidence(Data):
    cluster: str
    observed_from: str
    observed_to: str
    violation_timeline: list[TimelineEntry] = Field(default_factory=list)
    tikv_pod_history: dict[str, list[PodObservation]] = Field(default_factory=dict)
    nodes: list[NodeEvidence] = Field(default_factory=list)
    pd_stores: list[StoreEvidence] = Field(default_factory=list)
    pd_region_checks: dict[str, int] = Field(default_factory=dict)
    pd_members: list[PDMember] = Field(default_factory=list)
    # PD's pods, as the TiKV ones (a PD target's node and uid changes): <cluster>-pd-<n>
    pd_pod_history: dict[str, list[PodObservation]] = Field(default_factory=dict)
    pd_error: str = ""
    pd_unread: list[str] = Field(default_factory=list)  # reads PD did not answer while it answered others
    kubernetes_events: list[KubeEvent] = Field(default_factory=list)
    node_container_events: list[ContainerEvent] = Field(default_factory=list)
    tidb_operator_view: TidbOperatorView = Field(default_factory=TidbOperatorView)
    # Whether each store was also asked directly on its own status port (tikv-stores-answer): only then can
    # a silent store (a hung process) be told from one PD no longer hears (a partition).
    stores_asked_directly: bool = False
    # The SQL canary, when the demo runs one: its statements on the rows each store led, and their failures by
    # MySQL error code (timeout: given up).
    tidb_clients: list[ClientRows] = Field(default_factory=list)
    tidb_client_failures: dict[str, int] = Field(default_factory=dict)


def build_evidence(
    snapshot: Snapshot,
    started_at: str,
    timeline: Sequence[Violation],
    history: PodHistory,
    events: Sequence[dict[str, Any]],
    node_container_events: Sequence[ContainerEvent] = (),
    tidbcluster: dict[str, Any] | None = None,
    clients: Sequence[tuple[str, int, int]] = (),
    client_failures: dict[str, int] | None = None,
) -> Evidence:
    t0 = parse_iso(started_at)
    recent = sorted(events, key=lambda e: str(e.get("time", "")))[-MAX_EVENTS:]
    return with_refs(Evidence(
        cluster=f"{snapshot.namespace}/{snapshot.cluster}",
        observed_from=started_at,
        observed_to=iso(snapshot.taken_at),
        violation_timeline=[
            TimelineEntry(invariant=v.invariant, subject=v.subject, message=scrub(v.message),
                          first_seen=v.first_seen,
                          seconds_after_observation_start=round(parse_iso(v.first_seen) - t0, 2),
                          cleared=v.cleared or "")
            for v in timeline
        ],
        tikv_pod_history={pod: obs for pod, obs in history.items() if not _pd_pod(pod, snapshot)},
        pd_pod_history={pod: obs for pod, obs in history.items() if _pd_pod(pod, snapshot)},
        nodes=[NodeEvidence(name=n.name, ready=n.ready, reason=scrub(n.reason)) for n in snapshot.nodes],
        pd_stores=_stores(snapshot),
        pd_region_checks=dict(snapshot.region_checks),
        pd_members=[PDMember(name=scrub(m, 120), health=h, leader=bool(m) and m == snapshot.pd_leader)
                    for m, h in snapshot.pd_members[:MAX_PD_MEMBERS]],
        pd_error=scrub(snapshot.pd_error),
        pd_unread=[scrub(f"{read}: {why}") for read, why in snapshot.pd_unread[:len(PD_READS)]],
        kubernetes_events=[
            KubeEvent(time=str(e.get("time", "")), type=str(e.get("type", "")),
                      reason=scrub(str(e.get("reason", "")), 80), object=scrub(str(e.get("object", "")), 120),
                      message=scrub(str(e.get("message", ""))), count=str(e.get("count", 1)))
            for e in recent
        ],
        node_container_events=list(node_container_events[-MAX_EVENTS:]),
        tidb_operator_view=tidb_operator_view(tidbcluster),
        stores_asked_directly=bool(snapshot.store_answers),
        tidb_clients=[ClientRows(leader_store=scrub(store, 20), ok=ok, failed=bad)
                      for store, ok, bad in clients[:MAX_STORES]],
        tidb_client_failures={scrub(k, 20): v for k, v in list((client_failures or {}).items())[:17]},
    ))


def _stores(snapshot: Snapshot) -> list[StoreEvidence]:
    return [StoreEvidence(id=scrub(st.id, 20), address=scrub(st.address, 200),
                          pod=pod_name_of_store(st.address, snapshot.cluster, snapshot.namespace) or "",
                          state_name=scrub(st.state_name, 40),
                          seconds_since_heartbeat=round(snapshot.heartbeat_age(st), 1),
                          leader_count=st.leader_count, region_count=st.region_count)
            for st in snapshot.stores[:MAX_STORES]]


def _pd_pod(name: str, snapshot: Snapshot) -> bool:
    """Whether a pod of the history is one of PD's (``<cluster>-pd-<n>``, the name a PD member has without
    clusterDomain)."""
    return pd_member_pod(name, snapshot.cluster, snapshot.namespace) == name


def with_refs(ev: Evidence) -> Evidence:
    """The evidence with a reference (``ref``) on every item a diagnosis may cite: V timeline entries, P pod
    observations, N nodes, S PD stores, M PD members, E Kubernetes events, C node container events, O
    tidb-operator's stores, Q TiDB's clients on each store's rows and R tidb-operator's Ready condition;
    numbered from 1 in the order they are listed."""
    ev = ev.model_copy(deep=True)
    n = iter(range(1, 10**6))
    ev.tikv_pod_history = {pod: [o.model_copy(update={"ref": f"P{next(n)}"}) for o in obs]
                           for pod, obs in sorted(ev.tikv_pod_history.items())}
    ev.pd_pod_history = {pod: [o.model_copy(update={"ref": f"P{next(n)}"}) for o in obs]
                         for pod, obs in sorted(ev.pd_pod_history.items())}
    groups: tuple[tuple[str, Sequence[Any]], ...] = (
        ("V", ev.violation_timeline), ("N", ev.nodes), ("S", ev.pd_stores), ("M", ev.pd_members),
        ("E", ev.kubernetes_events), ("C", ev.node_container_events), ("O", ev.tidb_operator_view.tikv_stores),
        ("Q", ev.tidb_clients))
    for prefix, items in groups:
        for i, item in enumerate(items, 1):
            item.ref = f"{prefix}{i}"
    if ev.tidb_operator_view.ready is not None:
        ev.tidb_operator_view.ready.ref = "R1"
    return ev


def evidence_refs(ev: Evidence) -> frozenset[str]:
    """Every reference an answer may cite in this evidence."""
    items: list[Any] = [*ev.violation_timeline, *ev.nodes, *ev.pd_stores, *ev.pd_members, *ev.kubernetes_events,
                        *ev.node_container_events, *ev.tidb_operator_view.tikv_stores, *ev.tidb_clients,
                        *(o for obs in ev.tikv_pod_history.values() for o in obs),
                        *(o for obs in ev.pd_pod_history.values() for o in obs)]
    if ev.tidb_operator_view.ready is not None:
        items.append(ev.tidb_operator_view.ready)
    return frozenset(i.ref for i in items if i.ref)


def tidb_operator_view(tidbcluster: dict[str, Any] | None) -> TidbOperatorView:
    status = (tidbcluster or {}).get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    stores = ((status.get("tikv") or {}).get("stores") or {}).values()
    return TidbOperatorView(
        ready=ReadyCondition(**{k: scrub(str(ready.get(k, "")), 120) for k in ("status", "reason", "message")})
        if ready else None,
        tikv_stores=sorted(
            (OperatorStore(id=str(s.get("id", "")), pod_name=scrub(str(s.get("podName", "")), 120),
                           state=scrub(str(s.get("state", "")), 40))
             for s in list(stores)[:20]),
            key=lambda s: s.id,
        ),
    )

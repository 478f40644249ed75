"""The evidence a diagnosis is made from: what was observed, never what was done.

Built (pure) from the snapshots, the pod history and the Kubernetes events the
operator collected. It deliberately carries no field naming the injected
action or target: a diagnosis that could read the answer would prove nothing.
Text that comes from the cluster is truncated and scrubbed of anything that
looks like a credential before it leaves the operator.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from chaosdemo.api.models import Violation
from chaosdemo.api.timestamps import iso, parse_iso
from chaosdemo.core.addresses import pod_name_of_store
from chaosdemo.core.snapshot import PodState, Snapshot

__all__ = [
    "MAX_EVENTS",
    "MAX_TEXT",
    "ContainerEvent",
    "ContainerLog",
    "Evidence",
    "KubeEvent",
    "NewestEvents",
    "NodeEvidence",
    "OperatorStore",
    "PodHistory",
    "PodObservation",
    "StoreEvidence",
    "TidbOperatorView",
    "TimelineEntry",
    "build_evidence",
    "clip",
    "evidence_refs",
    "record_containers",
    "record_pod",
    "record_pods",
    "scrub",
]

MAX_EVENTS = 40
MAX_TEXT = 300
MAX_OBSERVATIONS_PER_POD = 8
MAX_STORES = 50
MAX_PD_MEMBERS = 10

_SECRET_PATTERNS = [
    # a PEM private key, whole (or to the end of a truncated text)
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
    re.compile(r"sk-ant-[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)\bauthorization\s*[=:]\s*(?:bearer|basic|token|digest)?\s*\S+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)[\w-]*(api[_-]?key|token|passw(or)?d|pwd|secret|credentials?|access[_-]?key|private[_-]?key)"
               r"\s*[=:]\s*\S+"),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub(text: str, limit: int = MAX_TEXT) -> str:
    for pat in _SECRET_PATTERNS:
        text = pat.sub("[redacted]", text)
    return clip(text, limit)


class _Data(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class PodObservation(_Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    at: str
    uid: str
    node: str
    phase: str
    ready: bool
    terminating: bool
    restarts: int


PodHistory = dict[str, list[PodObservation]]


def record_pods(history: PodHistory, snapshot: Snapshot) -> PodHistory:
    """Append each pod's state when it differs from the last one recorded (pure)."""
    out = {name: list(obs) for name, obs in history.items()}
    now = iso(snapshot.taken_at)
    for p in snapshot.pods:
        obs = _observe(p, now)
        seen = out.setdefault(p.name, [])
        if not seen or _key(seen[-1]) != _key(obs):
            seen.append(obs)
            del seen[:-MAX_OBSERVATIONS_PER_POD]
    present = {p.name for p in snapshot.pods}
    for name, seen in out.items():
        if name not in present and (not seen or seen[-1].uid != ""):
            seen.append(
                PodObservation(
                    at=now, uid="", node="", phase="Absent", ready=False, terminating=False, restarts=0
                )
            )
            del seen[:-MAX_OBSERVATIONS_PER_POD]
    return out


def record_pod(history: PodHistory, pod: PodState, at: str, deleted: bool = False) -> PodHistory:
    """Append one pod state seen in a watch event (pure); a deletion shows as Absent."""
    out = {name: list(obs) for name, obs in history.items()}
    obs = _observe(pod, at)
    if deleted:
        obs = obs.model_copy(update={"phase": "Absent", "ready": False})
    seen = out.setdefault(pod.name, [])
    if not seen or _key(seen[-1]) != _key(obs):
        seen.append(obs)
        del seen[:-MAX_OBSERVATIONS_PER_POD]
    return out


def _observe(p: PodState, now: str) -> PodObservation:
    return PodObservation(
        at=now,
        uid=p.uid,
        node=p.node,
        phase=p.phase,
        ready=p.ready,
        terminating=p.deleting,
        restarts=p.restart_count,
    )


def _key(o: PodObservation) -> tuple[Any, ...]:
    return (o.uid, o.node, o.phase, o.ready, o.terminating, o.restarts)


class ContainerEvent(_Data):
    """Docker's view of a kind node container changing: an observation, not an action of ours."""

    ref: str = ""
    node: str
    action: Literal["die", "start"]
    at: str
    exit_code: int = 0
    finished_at: str = ""
    started_at: str = ""


@dataclass(frozen=True)
class ContainerLog:
    """The node containers' last seen states (running, started at) and the changes seen so far."""

    last: dict[str, tuple[bool, str]] = field(default_factory=dict)
    events: tuple[ContainerEvent, ...] = ()


def record_containers(log: ContainerLog, snapshot: Snapshot) -> ContainerLog:
    """Note each node container that died or started since the last snapshot (pure)."""
    last, events = dict(log.last), list(log.events)
    at = iso(snapshot.taken_at)
    for c in snapshot.node_containers:
        before = last.get(c.name)
        if (before is None or before[0]) and not c.running:
            events.append(ContainerEvent(node=c.name, action="die", at=at, exit_code=c.exit_code,
                                         finished_at=c.finished_at))
        elif before is not None and not before[0] and c.running:
            events.append(ContainerEvent(node=c.name, action="start", at=at, started_at=c.started_at))
        last[c.name] = (c.running, c.started_at)
    return ContainerLog(last, tuple(events[-MAX_EVENTS:]))


class TimelineEntry(_Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    invariant: str
    subject: str
    message: str
    first_seen: str
    seconds_after_observation_start: float
    cleared: str = ""


class NodeEvidence(_Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    name: str
    ready: str
    reason: str = ""


class StoreEvidence(_Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    id: str
    address: str
    pod: str
    state_name: str
    seconds_since_heartbeat: float
    leader_count: int
    region_count: int


class PDMember(_Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    name: str
    health: bool


class KubeEvent(_Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    time: str
    type: str
    reason: str
    object: str
    message: str
    count: str


class ReadyCondition(_Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    status: str
    reason: str
    message: str


class OperatorStore(_Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    id: str
    pod_name: str
    state: str


class TidbOperatorView(_Data):
    """tidb-operator's own status of the cluster: its Ready condition and its map of TiKV stores.

    It still names each pod's store when PD itself cannot be reached.
    """

    ready: ReadyCondition | None = None
    tikv_stores: list[OperatorStore] = Field(default_factory=list)


class Evidence(_Data):
    cluster: str
    observed_from: str
    observed_to: str
    violation_timeline: list[TimelineEntry] = Field(default_factory=list)
    tikv_pod_history: dict[str, list[PodObservation]] = Field(default_factory=dict)
    nodes: list[NodeEvidence] = Field(default_factory=list)
    pd_stores: list[StoreEvidence] = Field(default_factory=list)
    pd_region_checks: dict[str, int] = Field(default_factory=dict)
    pd_members: list[PDMember] = Field(default_factory=list)
    pd_error: str = ""
    kubernetes_events: list[KubeEvent] = Field(default_factory=list)
    node_container_events: list[ContainerEvent] = Field(default_factory=list)
    tidb_operator_view: TidbOperatorView = Field(default_factory=TidbOperatorView)
    # Whether each store was also asked directly on its own status port (tikv-stores-answer): only then can
    # a silent store (a hung process) be told from one PD no longer hears (a partition).
    stores_asked_directly: bool = False


def about_cluster(cluster: str) -> Callable[[dict[str, Any]], bool]:
    """Whether an Event's involvedObject is one of the TidbCluster's own: its TiKV, PD and TiDB pods and
    StatefulSets, the TidbCluster, or a node. Any other Event of the namespace (another team's app,
    another cluster) is not the evidence, and is not sent."""
    member = re.compile(rf"{re.escape(cluster)}-(tikv|pd|tidb)(-\d+)?")

    def about(obj: dict[str, Any]) -> bool:
        kind, name = str(obj.get("kind", "")), str(obj.get("name", ""))
        return (kind == "Node" or (kind == "TidbCluster" and name == cluster)
                or (kind in ("Pod", "StatefulSet") and member.fullmatch(name) is not None))
    return about


class NewestEvents:
    """The newest ``keep`` Kubernetes Events at or after ``since``, summarized, fed one page of the
    API server's list at a time: a namespace's long history of Events is never held at once."""

    def __init__(self, since: float, keep: int, cluster: str) -> None:
        self.since, self.keep, self.about = since, max(0, keep), about_cluster(cluster)
        self._heap: list[tuple[float, int, dict[str, Any]]] = []  # the oldest kept first
        self._seen = 0

    def add(self, items: Iterable[dict[str, Any]]) -> None:
        for ev in items:
            obj, meta = ev.get("involvedObject") or {}, ev.get("metadata") or {}
            when = (ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp")
                    or meta.get("creationTimestamp") or "")
            try:
                at = parse_iso(str(when))
            except ValueError:
                continue
            if at < self.since or not self.keep or not self.about(obj):
                continue
            self._seen += 1
            entry = (at, self._seen, {"time": when, "type": ev.get("type", ""), "reason": ev.get("reason", ""),
                                      "object": f"{obj.get('kind', '')}/{obj.get('name', '')}",
                                      "message": ev.get("message", ""), "count": ev.get("count", 1)})
            if len(self._heap) < self.keep:
                heapq.heappush(self._heap, entry)
            else:
                heapq.heappushpop(self._heap, entry)

    def result(self) -> list[dict[str, Any]]:
        """The events kept, oldest first."""
        return [e[2] for e in sorted(self._heap)]


def build_evidence(
    snapshot: Snapshot,
    started_at: str,
    timeline: Sequence[Violation],
    history: PodHistory,
    events: Sequence[dict[str, Any]],
    node_container_events: Sequence[ContainerEvent] = (),
    tidbcluster: dict[str, Any] | None = None,
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
        tikv_pod_history=history,
        nodes=[NodeEvidence(name=n.name, ready=n.ready, reason=scrub(n.reason)) for n in snapshot.nodes],
        pd_stores=[
            StoreEvidence(id=scrub(st.id, 20), address=scrub(st.address, 200),
                          pod=pod_name_of_store(st.address, snapshot.cluster, snapshot.namespace) or "",
                          state_name=scrub(st.state_name, 40),
                          seconds_since_heartbeat=round(snapshot.taken_at - st.last_heartbeat_ns / 1e9, 1),
                          leader_count=st.leader_count, region_count=st.region_count)
            for st in snapshot.stores[:MAX_STORES]
        ],
        pd_region_checks=dict(snapshot.region_checks),
        pd_members=[PDMember(name=scrub(m, 120), health=h) for m, h in snapshot.pd_members[:MAX_PD_MEMBERS]],
        pd_error=scrub(snapshot.pd_error),
        kubernetes_events=[
            KubeEvent(time=str(e.get("time", "")), type=str(e.get("type", "")),
                      reason=scrub(str(e.get("reason", "")), 80), object=scrub(str(e.get("object", "")), 120),
                      message=scrub(str(e.get("message", ""))), count=str(e.get("count", 1)))
            for e in recent
        ],
        node_container_events=list(node_container_events[-MAX_EVENTS:]),
        tidb_operator_view=tidb_operator_view(tidbcluster),
        stores_asked_directly=bool(snapshot.store_answers),
    ))


def with_refs(ev: Evidence) -> Evidence:
    """The evidence with a reference (``ref``) on every item a diagnosis may cite: V timeline entries, P pod
    observations, N nodes, S PD stores, M PD members, E Kubernetes events, C node container events, O
    tidb-operator's stores and R its Ready condition; numbered from 1 in the order they are listed."""
    ev = ev.model_copy(deep=True)
    n = iter(range(1, 10**6))
    ev.tikv_pod_history = {pod: [o.model_copy(update={"ref": f"P{next(n)}"}) for o in obs]
                           for pod, obs in sorted(ev.tikv_pod_history.items())}
    groups: tuple[tuple[str, Sequence[Any]], ...] = (
        ("V", ev.violation_timeline), ("N", ev.nodes), ("S", ev.pd_stores), ("M", ev.pd_members),
        ("E", ev.kubernetes_events), ("C", ev.node_container_events), ("O", ev.tidb_operator_view.tikv_stores))
    for prefix, items in groups:
        for i, item in enumerate(items, 1):
            item.ref = f"{prefix}{i}"
    if ev.tidb_operator_view.ready is not None:
        ev.tidb_operator_view.ready.ref = "R1"
    return ev


def evidence_refs(ev: Evidence) -> frozenset[str]:
    """Every reference an answer may cite in this evidence."""
    items: list[Any] = [*ev.violation_timeline, *ev.nodes, *ev.pd_stores, *ev.pd_members, *ev.kubernetes_events,
                        *ev.node_container_events, *ev.tidb_operator_view.tikv_stores,
                        *(o for obs in ev.tikv_pod_history.values() for o in obs)]
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

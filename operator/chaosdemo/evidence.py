"""The evidence a diagnosis is made from: what was observed, never what was done.

Built (pure) from the snapshots, the pod history and the Kubernetes events the
operator collected. It deliberately carries no field naming the injected
action or target: a diagnosis that could read the answer would prove nothing.
Text that comes from the cluster is truncated and scrubbed of anything that
looks like a credential before it leaves the operator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from chaosdemo.models import Violation
from chaosdemo.snapshot import PodState, Snapshot, pod_name_of_store
from chaosdemo.timeutil import iso, parse_iso

__all__ = [
    "MAX_EVENTS",
    "MAX_TEXT",
    "Evidence",
    "PodHistory",
    "PodObservation",
    "build_evidence",
    "record_pod",
    "record_pods",
    "scrub",
]

MAX_EVENTS = 40
MAX_TEXT = 300
MAX_OBSERVATIONS_PER_POD = 8

_SECRET_PATTERNS = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)(api[_-]?key|token|password|secret)\s*[=:]\s*\S+"),
    re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
]


def scrub(text: str, limit: int = MAX_TEXT) -> str:
    for pat in _SECRET_PATTERNS:
        text = pat.sub("[redacted]", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Data(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class PodObservation(_Data):
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


class Evidence(_Data):
    cluster: str
    observed_from: str
    observed_to: str
    violation_timeline: list[dict[str, Any]] = Field(default_factory=list)
    tikv_pod_history: dict[str, list[PodObservation]] = Field(default_factory=dict)
    nodes: list[dict[str, str]] = Field(default_factory=list)
    pd_stores: list[dict[str, Any]] = Field(default_factory=list)
    pd_region_checks: dict[str, int] = Field(default_factory=dict)
    pd_members: list[dict[str, Any]] = Field(default_factory=list)
    pd_error: str = ""
    kubernetes_events: list[dict[str, str]] = Field(default_factory=list)
    node_container_events: list[dict[str, str]] = Field(default_factory=list)
    tidb_operator_view: dict[str, Any] = Field(default_factory=dict)


def build_evidence(
    snapshot: Snapshot,
    started_at: str,
    timeline: Sequence[Violation],
    history: PodHistory,
    events: Sequence[dict[str, Any]],
    node_container_events: Sequence[dict[str, str]] = (),
    tidbcluster: dict[str, Any] | None = None,
) -> Evidence:
    t0 = parse_iso(started_at)
    stores = []
    for st in snapshot.stores:
        stores.append(
            {
                "id": st.id,
                "address": st.address,
                "pod": pod_name_of_store(st.address, snapshot.cluster, snapshot.namespace) or "",
                "stateName": st.state_name,
                "secondsSinceHeartbeat": round(snapshot.taken_at - st.last_heartbeat_ns / 1e9, 1),
                "leaderCount": st.leader_count,
                "regionCount": st.region_count,
            }
        )
    recent = sorted(events, key=lambda e: str(e.get("time", "")))[-MAX_EVENTS:]
    return Evidence(
        cluster=f"{snapshot.namespace}/{snapshot.cluster}",
        observed_from=started_at,
        observed_to=iso(snapshot.taken_at),
        violation_timeline=[
            {
                "invariant": v.invariant,
                "subject": v.subject,
                "message": scrub(v.message),
                "firstSeen": v.first_seen,
                "secondsAfterObservationStart": round(parse_iso(v.first_seen) - t0, 2),
                "cleared": v.cleared or "",
            }
            for v in timeline
        ],
        tikv_pod_history=history,
        nodes=[{"name": n.name, "ready": n.ready, "reason": scrub(n.reason)} for n in snapshot.nodes],
        pd_stores=stores,
        pd_region_checks=dict(snapshot.region_checks),
        pd_members=[{"name": m, "health": h} for m, h in snapshot.pd_members],
        pd_error=scrub(snapshot.pd_error),
        kubernetes_events=[
            {
                "time": str(e.get("time", "")),
                "type": str(e.get("type", "")),
                "reason": scrub(str(e.get("reason", "")), 80),
                "object": scrub(str(e.get("object", "")), 120),
                "message": scrub(str(e.get("message", ""))),
                "count": str(e.get("count", 1)),
            }
            for e in recent
        ],
        node_container_events=[
            {k: scrub(str(v), 120) for k, v in e.items()} for e in node_container_events[-MAX_EVENTS:]
        ],
        tidb_operator_view=tidb_operator_view(tidbcluster),
    )


def tidb_operator_view(tidbcluster: dict[str, Any] | None) -> dict[str, Any]:
    """tidb-operator's own status of the cluster: its Ready condition and its map of TiKV stores.

    It still names each pod's store when PD itself cannot be reached.
    """
    status = (tidbcluster or {}).get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    stores = ((status.get("tikv") or {}).get("stores") or {}).values()
    return {
        "ready": {k: scrub(str(ready.get(k, "")), 120) for k in ("status", "reason", "message")} if ready else {},
        "tikvStores": sorted(
            ({"id": str(s.get("id", "")), "podName": str(s.get("podName", "")), "state": str(s.get("state", ""))}
             for s in list(stores)[:20]),
            key=lambda s: s["id"],
        ),
    }

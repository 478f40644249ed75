"""What the watch remembers of the TiKV and PD pods and the kind node containers, look after look (pure).

A pod's history is each state that differed from the last one recorded; a node container's, each time it died
or started. Both are bounded, and both are evidence a diagnosis reads: observations, never actions of ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from chaosdemo.api.timestamps import iso
from chaosdemo.core.snapshot import PodState, Snapshot

__all__ = [
    "MAX_EVENTS",
    "ContainerEvent",
    "ContainerLog",
    "Data",
    "PodHistory",
    "PodObservation",
    "remember_containers",
    "remember_pod",
    "remember_pods",
]

MAX_EVENTS = 40
MAX_OBSERVATIONS_PER_POD = 8


class Data(BaseModel):
    """Evidence as data: written in camelCase, as the status and the prompt show it."""


    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class PodObservation(Data):
    ref: str = ""  # the item's reference, cited by a diagnosis (see with_ids)
    at: str
    uid: str
    node: str
    phase: str
    ready: bool
    terminating: bool
    restarts: int


PodHistory = dict[str, list[PodObservation]]


def remember_pods(history: PodHistory, snapshot: Snapshot) -> PodHistory:
    """Append each pod's state when it differs from the last one recorded (pure)."""
    out = {name: list(obs) for name, obs in history.items()}
    now = iso(snapshot.taken_at)
    pods = (*snapshot.pods, *snapshot.pd_pods)
    for p in pods:
        obs = _observe(p, now)
        seen = out.setdefault(p.name, [])
        if not seen or _key(seen[-1]) != _key(obs):
            seen.append(obs)
            del seen[:-MAX_OBSERVATIONS_PER_POD]
    present = {p.name for p in pods}
    for name, seen in out.items():
        if name not in present and (not seen or seen[-1].uid != ""):
            seen.append(
                PodObservation(
                    at=now, uid="", node="", phase="Absent", ready=False, terminating=False, restarts=0
                )
            )
            del seen[:-MAX_OBSERVATIONS_PER_POD]
    return out


def remember_pod(history: PodHistory, pod: PodState, at: str, deleted: bool = False) -> PodHistory:
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


class ContainerEvent(Data):
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


def remember_containers(log: ContainerLog, snapshot: Snapshot) -> ContainerLog:
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

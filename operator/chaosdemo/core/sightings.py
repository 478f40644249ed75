"""Who saw the fault when: Kubernetes, PD and tidb-operator, each read from the operator's own looks (pure).

Each look's snapshot already holds what each observer shows of the target: Kubernetes its pod (gone,
being deleted, replaced, restarted, not Ready) and its node (not Ready); PD its store's state (of a PD
target: its leader, and that member's health); tidb-operator its copy of that state and its Ready condition.
An observer's first sight is the first look after the injection where it showed something wrong; its
end, the first look after that where it showed the target well again (for Kubernetes: a pod of that name
Ready, whatever its uid). A look where an observer could not be read (PD unreachable, no tidb-operator
status) tells nothing about it, either way. ChaosDemo's own entry is its detection and its recovery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chaosdemo.api.models import ObserverSight, TargetStatus
from chaosdemo.api.timestamps import iso, parse_iso
from chaosdemo.core.snapshot import Snapshot

__all__ = ["OBSERVERS", "advance", "close", "ours", "tidb_operator_shows"]

OBSERVERS = ("kubernetes", "pd", "tidb-operator")
Says = Callable[[Snapshot, TargetStatus], str | None]  # what is wrong; "" nothing; None: could not tell


def _kube_unwell(s: Snapshot, t: TargetStatus) -> str | None:
    p = s.pod(t.pod)
    node = next((n for n in s.nodes if n.name == t.node), None)
    if p is None:
        return "pod gone"
    if p.deleting:
        return "pod being deleted"
    if not p.ready:
        return "pod not Ready"
    if node is not None and node.ready != "True":
        return f"node {t.node} not Ready"
    return ""


def _kube_changed(s: Snapshot, t: TargetStatus) -> str | None:
    p = s.pod(t.pod)
    if p is not None and t.pod_uid and p.uid != t.pod_uid:
        return "pod replaced (new uid)"
    if p is not None and p.uid == t.pod_uid and p.restart_count > t.restart_count:
        return "container restarted"
    return _kube_unwell(s, t)


def _pd_member(s: Snapshot, t: TargetStatus) -> str | None:
    """A PD target, as PD shows it: its member's health in /health."""
    if not s.pd_answered("health"):
        return None
    healthy = dict(s.pd_members).get(t.pd_member)
    if healthy is None:
        return f"member {t.pd_member} missing"[:120]
    return "" if healthy else f"member {t.pd_member} unhealthy"[:120]


def _pd_first(s: Snapshot, t: TargetStatus) -> str | None:
    """PD's first sight: of a store, its state; of a PD target, its leader gone to another member, or its
    member unwell."""
    if t.component != "pd":
        return _pd(s, t)
    if s.pd_answered("members") and s.pd_leader != t.pd_member:
        return f"leader moved to {s.pd_leader}"[:120] if s.pd_leader else "no leader"
    return _pd_member(s, t)


def _pd(s: Snapshot, t: TargetStatus) -> str | None:
    if t.component == "pd":
        return _pd_member(s, t)
    if not s.pd_answered("stores"):
        return None
    store = next((st for st in s.stores if st.id == t.store_id), None)
    if store is None:
        return f"store {t.store_id} missing"
    return "" if store.state_name == "Up" else f"store {t.store_id} {store.state_name}"[:120]


def tidb_operator_shows(s: Snapshot, t: TargetStatus) -> str | None:
    """What tidb-operator's status shows wrong of the target ("" nothing: it agrees; None: no status to read)."""
    tc = s.tidb_operator
    if tc is None:
        return None
    state = tc.store_of(t.pod)
    if state and state != "Up":
        return f"store of {t.pod} {state}"[:120]
    return "" if tc.ready == "True" else f"Ready={tc.ready} ({tc.reason})"[:120]


SAYS: dict[str, tuple[Says, Says]] = {  # (first sight, still wrong)
    "kubernetes": (_kube_changed, _kube_unwell), "pd": (_pd_first, _pd),
    "tidb-operator": (tidb_operator_shows, tidb_operator_shows)}


def _entry(sights: Sequence[ObserverSight], who: str) -> ObserverSight:
    return next((o for o in sights if o.observer == who), ObserverSight(observer=who))


def advance(sights: Sequence[ObserverSight], s: Snapshot, t: TargetStatus, injected_at: str) -> list[ObserverSight]:
    """The sightings after one more look (taken after the injection); unchanged entries are the same objects."""
    out = []
    after = round(s.taken_at - parse_iso(injected_at), 3)
    for who in OBSERVERS:
        o, (changed, unwell) = _entry(sights, who), SAYS[who]
        if o.saw_fault_at is None:
            what = changed(s, t)
            if what:
                o = o.model_copy(update={"saw_fault_at": iso(s.taken_at), "saw_fault_seconds": after, "what": what})
        if o.saw_fault_at is not None and o.saw_end_at is None and unwell(s, t) == "":
            o = o.model_copy(update={"saw_end_at": iso(s.taken_at), "saw_end_seconds": after})
        if who == "pd" and o.down_at is None and o.saw_fault_at is not None and (_pd(s, t) or "").endswith(" Down"):
            o = o.model_copy(update={"down_at": iso(s.taken_at)})
        out.append(o)
    return [*out, *(o for o in sights if o.observer in ("chaosdemo", "tidb-clients"))]


def ours(sights: Sequence[ObserverSight], detected_at: str | None, detected_seconds: float | None,
         detected_by: str, recovered_at: str | None, recovery_seconds: float | None) -> list[ObserverSight]:
    """The sightings with ChaosDemo's own: its detection and its recovery."""
    mine = ObserverSight(observer="chaosdemo", saw_fault_at=detected_at, saw_fault_seconds=detected_seconds,
                         what=f"{detected_by} broke" if detected_by else "", saw_end_at=recovered_at,
                         saw_end_seconds=recovery_seconds)
    return [*(o for o in sights if o.observer != "chaosdemo"), mine]


def close(sights: Sequence[ObserverSight]) -> list[ObserverSight]:
    """At the end: an observer that never showed the fault says so (unless it already says why not)."""
    return [o if o.saw_fault_at is not None or o.observer == "chaosdemo" or o.what
            else o.model_copy(update={"what": "never showed the fault"}) for o in sights]

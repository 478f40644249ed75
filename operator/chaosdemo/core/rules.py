"""The rules engine: a deterministic diagnosis from the same evidence Claude gets.

It answers when Claude is not configured or not available, so every demo ends
with a diagnosis and the status says which engine spoke. The rules look at the
pod history first (a new uid means the pod was replaced; the same uid with
more restarts means the container died), then at nodes, then at PD's leader (lost, with its member down),
then at the stores: one that stops answering
on its own status port while its pod stays Ready is a hung process; one that still answers while PD
stops hearing it is cut off from PD.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from chaosdemo.api.models import DiagnosisAnswer
from chaosdemo.core.evidence import Evidence, TimelineEntry
from chaosdemo.core.history import PodObservation

__all__ = ["diagnose_by_rules"]


def _replaced(history: list[PodObservation]) -> bool:
    uids = [o.uid for o in history if o.uid]
    return len(set(uids)) > 1 or any(o.terminating or o.phase == "Absent" for o in history)


def _restarted(history: list[PodObservation]) -> bool:
    live = [o for o in history if o.uid]
    if not live:
        return False
    first = live[0]
    return any(o.uid == first.uid and o.restarts > first.restarts for o in live)


def _store_of(ev: Evidence, pod: str) -> str:
    """PD's store of the pod, else tidb-operator's record of it (PD may be the one that is down)."""
    from_pd = next((s.id for s in ev.pd_stores if s.pod == pod), "")
    if from_pd:
        return from_pd
    return next((s.id for s in ev.tidb_operator_view.tikv_stores if s.pod_name == pod), "")


def _ids(*items: Iterable[object]) -> list[str]:
    """The references of the items cited, in order, once each."""
    return list(dict.fromkeys(str(getattr(i, "ref", "")) for it in items for i in it if getattr(i, "ref", "")))


def _violations_of(ev: Evidence, *subjects: str, invariant: str = "") -> list[TimelineEntry]:
    return [v for v in ev.violation_timeline if (not subjects or v.subject in subjects)
            and (not invariant or v.invariant == invariant)]


def _node_of(history: list[PodObservation]) -> str:
    return next((o.node for o in history if o.node), "")


def _first_subject_pod(ev: Evidence) -> str:
    return next((v.subject for v in ev.violation_timeline if v.subject in ev.tikv_pod_history), "")


def _node_down(ev: Evidence) -> DiagnosisAnswer | None:
    """A node that died (Docker) or went NotReady, hosting a TiKV pod."""
    down_nodes = [n.name for n in ev.nodes if n.ready != "True"]
    died_nodes = [e.node for e in ev.node_container_events if e.action == "die"]
    for node in [*died_nodes, *down_nodes]:
        pods = sorted(p for p, h in ev.tikv_pod_history.items() if _node_of(h) == node)
        if not pods:
            continue
        pod = pods[0]
        facts = [f"node {node} hosting {', '.join(pods)} became unavailable"]
        if node in died_nodes:
            facts.append(f"the container of node {node} died")
        if node in down_nodes:
            facts.append(f"node {node} Ready condition is not True")
        return DiagnosisAnswer(
            summary=f"Node {node} went down, taking TiKV pod {pod} with it.",
            root_cause=f"The node {node} that hosts {pod} stopped; its kubelet and TiKV stopped with it.",
            fault_class="node-failure", affected_pod=pod, affected_store=_store_of(ev, pod), affected_node=node,
            confidence=0.9 if node in died_nodes else 0.75, evidence=facts,
            cited_evidence=_ids([e for e in ev.node_container_events if e.node == node],
                                [n for n in ev.nodes if n.name == node], _violations_of(ev, node),
                                ev.tikv_pod_history[pod][-2:]),
            recommended_actions=[
                f"Bring node {node} back, or cordon it and move the TiKV pod with its volume.",
                "Watch the store in PD return to Up and pending peers drain.",
            ],
        )
    return None


def _pd_leader_lost(ev: Evidence) -> DiagnosisAnswer | None:
    """PD's leader lost: the member that led PD stopped leading (another leads, or none) while PD's pod, or
    PD's own health, showed that member's pod down or unwell; the TiKV pods played no part."""
    lost = _violations_of(ev, invariant="pd-leader-elected")
    if not lost or any(_replaced(h) or _restarted(h) for h in ev.tikv_pod_history.values()):
        return None
    pod = lost[0].subject
    unwell = [*_violations_of(ev, pod, invariant="pd-pod-ready"),
              *_violations_of(ev, invariant="pd-members-healthy")]
    leader = next((m for m in ev.pd_members if m.leader), None)
    h = ev.pd_pod_history.get(pod, [])
    facts = [f"{v.invariant} broke on {v.subject} at {v.first_seen}: {v.message}" for v in [*lost, *unwell][:4]]
    uids = list(dict.fromkeys(o.uid for o in h if o.uid))
    if len(uids) > 1:
        facts.append(f"pod {pod} uids seen: {', '.join(uids)}")
    if leader is not None:
        facts.append(f"PD member {leader.name} leads PD at the last look")
    return DiagnosisAnswer(
        summary=f"PD lost its leader on pod {pod}; PD elected another leader.",
        root_cause=(f"The PD member on {pod}, PD's leader, stopped serving (its pod or process went down) and "
                    "the other members elected a new leader; TSO and scheduling paused until they did."),
        fault_class="pd-leader-loss", affected_pod=pod, affected_store="", affected_node=_node_of(h),
        confidence=0.85 if unwell else 0.6, evidence=facts,
        cited_evidence=_ids(lost, unwell[:3], [leader] if leader is not None else [], h[-2:]),
        recommended_actions=[
            f"Find why the PD member on {pod} went down (kubectl describe pod {pod}; its previous logs).",
            "Confirm every PD member is healthy again and PD has one leader (pd-ctl member).",
        ],
    )


def _pod_replaced(ev: Evidence) -> DiagnosisAnswer | None:
    """A TiKV pod that came back under a new uid: deleted, and recreated by its StatefulSet."""
    replaced = sorted(p for p, h in ev.tikv_pod_history.items() if _replaced(h))
    if not replaced:
        return None
    first = _first_subject_pod(ev)
    pod = first if first in replaced else replaced[0]
    h = ev.tikv_pod_history[pod]
    uids = [o.uid for o in h if o.uid]
    return DiagnosisAnswer(
        summary=f"TiKV pod {pod} was deleted and replaced by its StatefulSet.",
        root_cause=(f"Pod {pod} terminated and was recreated with a new uid; its store stopped "
                    "serving while the new pod started."),
        fault_class="pod-failure", affected_pod=pod, affected_store=_store_of(ev, pod), affected_node=_node_of(h),
        confidence=0.9 if len(replaced) == 1 else 0.6,
        evidence=[
            f"pod {pod} uids seen: {', '.join(dict.fromkeys(uids))}",
            *[f"{v.invariant} broke on {v.subject} at {v.first_seen}" for v in ev.violation_timeline[:3]],
        ],
        cited_evidence=_ids(h, ev.violation_timeline[:3]),
        recommended_actions=[
            f"Check who or what deleted {pod} (audit log, PodDisruptionBudgets, evictions).",
            "Confirm the store is Up in PD and no regions have pending or down peers.",
        ],
    )


def _container_restarted(ev: Evidence) -> DiagnosisAnswer | None:
    """A TiKV pod that kept its uid while its restart count rose: the container died in place."""
    restarted = sorted(p for p, h in ev.tikv_pod_history.items() if _restarted(h) and not _replaced(h))
    if not restarted:
        return None
    first = _first_subject_pod(ev)
    pod = first if first in restarted else restarted[0]
    h = ev.tikv_pod_history[pod]
    return DiagnosisAnswer(
        summary=f"The tikv container of pod {pod} crashed and was restarted in place.",
        root_cause=f"The TiKV process in {pod} died; the kubelet restarted the container in the same pod.",
        fault_class="container-crash", affected_pod=pod, affected_store=_store_of(ev, pod), affected_node=_node_of(h),
        confidence=0.85,
        evidence=[f"pod {pod} kept uid {h[0].uid} while its restart count rose to {h[-1].restarts}"],
        cited_evidence=_ids(h, _violations_of(ev, pod)),
        recommended_actions=[
            f"Read the previous container's logs: kubectl logs {pod} -c tikv --previous.",
            "Check for OOM kills and disk errors on the node.",
        ],
    )


def _kept_running(ev: Evidence, pod: str) -> bool:
    """Kubernetes saw nothing happen to ``pod``: the same uid, no restart, Ready throughout."""
    h = ev.tikv_pod_history.get(pod) or []
    return bool(h) and not _replaced(h) and not _restarted(h) and all(o.ready for o in h if o.uid)


def _store_silent(ev: Evidence) -> DiagnosisAnswer | None:
    """A store that stopped answering on its own status port while Kubernetes kept its pod Ready: a hung process."""
    silent = [v for v in ev.violation_timeline if v.invariant == "tikv-stores-answer" and _kept_running(ev, v.subject)]
    if not silent:
        return None
    pod = silent[0].subject
    return DiagnosisAnswer(
        summary=f"The TiKV process of pod {pod} hung: its store stopped answering while the pod stayed Ready.",
        root_cause=(f"The process in {pod} stopped running (stopped, or stuck) without exiting: it no longer "
                    "answers on its status port and PD stops hearing its heartbeats, while Kubernetes, which "
                    "checks only that the container runs, sees nothing."),
        fault_class="process-hang", affected_pod=pod, affected_store=_store_of(ev, pod),
        affected_node=_node_of(ev.tikv_pod_history[pod]), confidence=0.8,
        evidence=[f"tikv-stores-answer broke on {pod} at {silent[0].first_seen}",
                  f"pod {pod} kept its uid, its restart count and Ready"],
        cited_evidence=_ids(silent[:1], ev.tikv_pod_history[pod]),
        recommended_actions=[
            f"Look at the process state in {pod} (a T or D state), and at its node's disk and memory pressure.",
            "Add a liveness probe on TiKV's status port so that a hung store gets restarted.",
        ],
    )


def _stale_store_pods(ev: Evidence) -> list[str]:
    stale = {v.subject.removeprefix("store-") for v in ev.violation_timeline
             if v.invariant in ("pd-store-heartbeats-fresh", "pd-stores-up") and v.subject.startswith("store-")}
    return sorted({s.pod for s in ev.pd_stores if s.id in stale and s.pod})


def _heartbeats_lost(ev: Evidence) -> DiagnosisAnswer | None:
    """PD stopped hearing a store that still answers when asked directly, its pod untouched: cut off from PD."""
    if not ev.stores_asked_directly:
        return None
    silent = {v.subject for v in ev.violation_timeline if v.invariant == "tikv-stores-answer"}
    cut = [p for p in _stale_store_pods(ev) if p not in silent and _kept_running(ev, p)]
    if not cut:
        return None
    pod = cut[0]
    return DiagnosisAnswer(
        summary=f"TiKV pod {pod} was cut off from PD: PD stopped hearing its store, which still answers.",
        root_cause=(f"The network between {pod} and PD dropped its traffic: the store kept running and answering "
                    "on its status port, but its heartbeats no longer reached PD. Kubernetes saw nothing."),
        fault_class="network-partition", affected_pod=pod, affected_store=_store_of(ev, pod),
        affected_node=_node_of(ev.tikv_pod_history[pod]), confidence=0.75,
        evidence=[f"PD's heartbeat of the store of {pod} went stale", f"the store of {pod} kept answering directly",
                  f"pod {pod} kept its uid, its restart count and Ready"],
        cited_evidence=_ids([v for v in ev.violation_timeline if v.subject == f"store-{_store_of(ev, pod)}"],
                            [s for s in ev.pd_stores if s.pod == pod], ev.tikv_pod_history[pod]),
        recommended_actions=[
            f"Check NetworkPolicies, node firewall rules and the CNI between {pod} and PD.",
            "Watch the store return to Up in PD once the network heals.",
        ],
    )


def _store_not_up(ev: Evidence) -> DiagnosisAnswer | None:
    """A store PD does not call Up, with nothing changed in Kubernetes."""
    bad = [s for s in ev.pd_stores if s.state_name != "Up"]
    if not bad:
        return None
    s = bad[0]
    return DiagnosisAnswer(
        summary=f"TiKV store {s.id} is {s.state_name} in PD.",
        root_cause="PD stopped receiving heartbeats from the store; Kubernetes shows no pod or node change.",
        fault_class="unknown", affected_pod=s.pod, affected_store=s.id, affected_node="", confidence=0.4,
        evidence=[f"store {s.id} state {s.state_name}, {s.seconds_since_heartbeat}s since heartbeat"],
        cited_evidence=_ids([s]),
        recommended_actions=["Check network connectivity between the TiKV pod and PD."],
    )


def _healthy(ev: Evidence) -> DiagnosisAnswer | None:
    """Nothing broke: no invariant, every TiKV pod as it was and Ready, every node Ready, every store Up."""
    if ev.violation_timeline or ev.pd_error or ev.pd_unread or any(n.ready != "True" for n in ev.nodes) \
            or any(s.state_name != "Up" for s in ev.pd_stores) \
            or not all(_kept_running(ev, p) for p in ev.tikv_pod_history):
        return None
    return DiagnosisAnswer(
        summary="No fault: the cluster is healthy.",
        root_cause="No invariant broke; every TiKV pod kept its uid, its restarts and Ready, every node is Ready "
                   "and PD calls every store Up.",
        fault_class="no-fault", affected_pod="", affected_store="", affected_node="", confidence=0.9,
        evidence=["no invariant broke", "every TiKV pod unchanged and Ready", "every store Up in PD"],
        cited_evidence=_ids(ev.pd_stores, ev.nodes),
        recommended_actions=["Nothing to do."],
    )


RULES: tuple[Callable[[Evidence], DiagnosisAnswer | None], ...] = (
    _healthy, _node_down, _pd_leader_lost, _pod_replaced, _container_restarted, _store_silent, _heartbeats_lost,
    _store_not_up)
"""Tried in order, the strongest signal first; the first that recognises the evidence answers."""


def _with_clients(ev: Evidence, answer: DiagnosisAnswer) -> DiagnosisAnswer:
    """What TiDB's clients felt on the affected store's rows, added to the answer's evidence (never its class):
    a hung leader holds its rows' statements until an election; a store cut off from PD alone keeps serving."""
    rows = next((r for r in ev.tidb_clients if answer.affected_store and r.leader_store == answer.affected_store),
                None)
    if rows is None:
        return answer
    others = sum(r.failed for r in ev.tidb_clients if r is not rows)
    said = (f"TiDB's clients: {rows.failed} statements on the rows store {rows.leader_store} led failed or timed "
            f"out ({rows.ok} succeeded), {others} on the other rows" if rows.failed else
            f"TiDB's clients kept being served on the rows store {rows.leader_store} led ({rows.ok} statements, "
            "none failed): the store still served them")
    return answer.model_copy(update={"evidence": [*answer.evidence, said][:20],
                                     "cited_evidence": [*answer.cited_evidence, rows.ref][:40]})


def diagnose_by_rules(ev: Evidence) -> DiagnosisAnswer:
    for rule in RULES:
        answer = rule(ev)
        if answer is not None:
            return _with_clients(ev, answer)
    return DiagnosisAnswer(
        summary="No cause could be determined from the evidence.",
        root_cause="The evidence shows broken invariants but no pod, node or store change.",
        fault_class="unknown", affected_pod=_first_subject_pod(ev), affected_store="", affected_node="",
        confidence=0.1,
        evidence=[f"{v.invariant} broke on {v.subject}" for v in ev.violation_timeline[:3]],
        cited_evidence=_ids(ev.violation_timeline[:3]),
        recommended_actions=["Inspect the TiKV logs and PD's store and region views."],
    )

"""Issue 32: ``target.role: pd-leader``, the drill SREs and TiDB's own suites run most after a TiKV kill.

The target is chosen from PD's own word (``/members``) among the TidbCluster's own PD pods, with PD's
quorum counted without it; its detection is PD's leader moving (never excused as an election, as it is on
a TiKV demo); its recovery waits for PD to lead again and the PD pod to be back; the rules name the class.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaosdemo.api.errors import TargetError
from chaosdemo.api.models import PD_LEADER_ACTIONS, ChaosDemoSpec, TargetStatus
from chaosdemo.core.evidence import build_evidence
from chaosdemo.core.invariants import InvariantConfig
from chaosdemo.core.rules import diagnose_by_rules
from chaosdemo.core.sightings import SAYS
from chaosdemo.core.snapshot import Snapshot, StatefulSetState
from chaosdemo.core.step import Detected, KeepWaiting, Recovered, WatchPlan, WatchState, step
from chaosdemo.core.targeting import (
    members,
    select_pd_leader,
    why_names_refused,
    why_record_refused,
)
from chaosdemo.run.faults import PodDelete, ground_truth

from .helpers import NOW, healthy, pod

FQDN = "basic-pd-{}.basic-pd-peer.tidb-cluster.svc.cluster.local"
PD_PODS = tuple(replace(pod(f"basic-pd-{i}"), owner="StatefulSet/basic-pd/sts-uid") for i in range(3))
HEALTHY = tuple((FQDN.format(i), True) for i in range(3))
TARGET = TargetStatus(component="pd", pod="basic-pd-1", pod_uid="uid-basic-pd-1", node="node-1",
                      pd_member=FQDN.format(1), role="pd-leader")
PLAN = WatchPlan(injected_at=NOW, detection_seconds=30, recovery_seconds=300, stability_seconds=2, target=TARGET)


def look(t: float, *, leader: str = FQDN.format(1), pd_pods: tuple = PD_PODS, members_health: tuple = HEALTHY,
         **more: object) -> Snapshot:
    s = healthy(pd_members=members_health, pd_pods=pd_pods, pd_leader=leader, **more)
    stores = tuple(replace(st, last_heartbeat_ns=st.last_heartbeat_ns + int(t * 1e9)) for st in s.stores)
    return replace(s, taken_at=NOW + t, stores=stores)


def test_the_pd_leader_is_chosen_by_pds_word_among_the_clusters_own_pd_pods() -> None:
    choice = select_pd_leader(PD_PODS, FQDN.format(1), HEALTHY, "basic", "tidb-cluster")
    assert choice.pod.name == "basic-pd-1" and choice.store is None and choice.pd_member == FQDN.format(1)
    assert "led PD when chosen" in choice.selection and "2 left without it (quorum 2)" in choice.selection
    # A stray pod with PD's labels but no owner is never a member, so never the target.
    own = members([*PD_PODS[:1], pod("basic-pd-1")], StatefulSetState("basic-pd", 3, 3, 3, 3, uid="sts-uid",
                                                                       owner="TidbCluster/basic/tc-uid"),
                  "basic", "tc-uid")
    with pytest.raises(TargetError) as e:
        select_pd_leader(own, FQDN.format(1), HEALTHY, "basic", "tidb-cluster")
    assert e.value.reason == "TargetNotPD" and "basic-pd-0" in e.value.message


@pytest.mark.parametrize(("health", "leader", "reason"), [
    ((("basic-pd-0", True),), "basic-pd-0", "PDQuorumAtRisk"),  # one member: PD would have none
    ((*HEALTHY[:2], (FQDN.format(2), False)), FQDN.format(1), "PDQuorumAtRisk"),  # one down already
    (HEALTHY, "", "NoPDLeader"),
    (None, FQDN.format(1), "PDQuorumAtRisk"),  # /health unread: the quorum cannot be counted
    (HEALTHY, "evil-pd-0", "TargetNotPD"),
])
def test_a_pd_leader_whose_loss_would_break_pds_quorum_or_that_is_not_known_is_refused(
        health: tuple | None, leader: str, reason: str) -> None:
    pods = (replace(pod("basic-pd-0"), owner="x"),) if leader == "basic-pd-0" else PD_PODS
    with pytest.raises(TargetError) as e:
        select_pd_leader(pods, leader, health, "basic", "tidb-cluster")
    assert e.value.reason == reason, e.value.message


def test_a_pd_leader_demo_takes_only_the_actions_on_one_pod_or_its_process() -> None:
    rules = ChaosDemoSpec.model_json_schema()
    assert "node-kill" not in PD_LEADER_ACTIONS and "network-partition" not in PD_LEADER_ACTIONS
    assert "target.role pd-leader hits one PD pod" in str(rules)


def test_a_pd_target_is_detected_by_its_leader_moving_and_recovers_once_pd_leads_and_its_pod_is_back() -> None:
    cfg_plan = replace(PLAN, cfg=InvariantConfig())
    st = WatchState()
    assert isinstance(step(st, cfg_plan, [], look(0.2)).decision, KeepWaiting), "nothing yet"
    gone = tuple(p for p in PD_PODS if p.name != "basic-pd-1")
    first = step(st, cfg_plan, [], look(1.0, leader=FQDN.format(2), pd_pods=(*gone, replace(
        pod("basic-pd-1"), deleting=True)), members_health=(HEALTHY[0], (FQDN.format(1), False), HEALTHY[2])))
    assert isinstance(first.decision, Detected), "an election is the fault here, never excused"
    said = {b.invariant: b.message for b in first.decision.breaches}
    assert said["pd-leader-elected"] == f"PD's leader moved from {FQDN.format(1)} to {FQDN.format(2)}"
    assert said["pd-pod-ready"] == "PD pod basic-pd-1 is terminating" and "pd-members-healthy" in said
    # The new leader leads: that violation clears at once; the pod and its member hold recovery.
    back = step(first.state, cfg_plan, [], look(3.0, leader=FQDN.format(2), pd_pods=gone,
                                                members_health=(HEALTHY[0], (FQDN.format(1), False), HEALTHY[2])))
    timeline = {v.invariant: v for v in back.state.violations}
    assert timeline["pd-leader-elected"].cleared and not timeline["pd-pod-ready"].cleared
    assert back.state.stable_since is None
    # PD leaderless after the detection holds recovery too.
    held = step(back.state, cfg_plan, [], look(4.0, leader="", pd_leaderless=True))
    assert {v.invariant for v in held.state.violations if not v.cleared} == {"pd-leader-elected"}
    assert held.state.stable_since is None
    well = step(held.state, cfg_plan, [], look(5.0, leader=FQDN.format(2)))
    done = step(well.state, cfg_plan, [], look(7.5, leader=FQDN.format(2)))
    assert well.state.stable_since == NOW + 5.0 and isinstance(done.decision, Recovered)


def test_pd_and_kubernetes_say_what_they_saw_of_a_pd_target() -> None:
    first, still = SAYS["pd"]
    moved = look(1, leader=FQDN.format(0), members_health=(HEALTHY[0], (FQDN.format(1), False), HEALTHY[2]))
    assert first(moved, TARGET) == f"leader moved to {FQDN.format(0)}"
    assert still(moved, TARGET) == f"member {FQDN.format(1)} unhealthy" and still(look(9), TARGET) == ""
    replaced = look(2, pd_pods=(*PD_PODS[:1], replace(pod("basic-pd-1"), uid="new"), PD_PODS[2]))
    assert SAYS["kubernetes"][0](replaced, TARGET) == "pod replaced (new uid)"


def test_the_rules_name_a_lost_pd_leader_and_the_grade_expects_it() -> None:
    before = step(WatchState(), PLAN, [], look(0.2))
    gone = tuple(p for p in PD_PODS if p.name != "basic-pd-1")
    detected = step(before.state, PLAN, [], look(1.0, leader=FQDN.format(2), pd_pods=gone,
                                                 members_health=(HEALTHY[0], (FQDN.format(1), False), HEALTHY[2])))
    snap = look(1.0, leader=FQDN.format(2), pd_pods=gone)
    ev = build_evidence(snapshot=snap, timeline=detected.state.violations, history=detected.state.history,
                        events=[], started_at="2026-11-25T08:00:00Z", node_container_events=[])
    # PD's pods have a history of their own, never mistaken for TiKV's.
    assert set(ev.pd_pod_history) == {"basic-pd-0", "basic-pd-1", "basic-pd-2"}
    assert set(ev.tikv_pod_history) == {"basic-tikv-0", "basic-tikv-1", "basic-tikv-2"}
    assert [o.phase for o in ev.pd_pod_history["basic-pd-1"]] == ["Running", "Absent"]
    answer = diagnose_by_rules(ev)
    assert answer.fault_class == "pd-leader-loss" and answer.affected_pod == "basic-pd-1", answer
    assert answer.affected_node == "node-1", "named from the PD pod's history"
    assert any(m.leader and m.name == FQDN.format(2) for m in ev.pd_members)
    truth = ground_truth(PodDelete(kube=None, action="pod-kill", grace=0), TARGET)  # type: ignore[arg-type]
    assert truth.expected_class == "pd-leader-loss"


def test_a_resumed_pd_target_is_confirmed_against_pds_statefulset_never_tikvs() -> None:
    assert why_names_refused(TARGET, "basic", node_level=False) == ""
    assert "not a pod name of StatefulSet basic-pd" in why_names_refused(
        TARGET.model_copy(update={"pod": "basic-tikv-1"}), "basic", node_level=False)
    tc = {"metadata": {"uid": "tc-uid"}}
    sts = {"metadata": {"name": "basic-pd", "uid": "sts-uid", "ownerReferences": [
        {"kind": "TidbCluster", "name": "basic", "uid": "tc-uid", "controller": True}]}}
    mine = {"metadata": {"ownerReferences": [{"kind": "StatefulSet", "name": "basic-pd", "uid": "sts-uid",
                                              "controller": True}]}}
    assert why_record_refused(TARGET, "basic", tidbcluster=tc, statefulset=sts, pod=mine, node=None,
                              node_level=False) == ""
    tikv = {"metadata": {"ownerReferences": [{"kind": "StatefulSet", "name": "basic-tikv", "uid": "other",
                                              "controller": True}]}}
    assert "not controlled by StatefulSet basic-pd" in why_record_refused(
        TARGET, "basic", tidbcluster=tc, statefulset=sts, pod=tikv, node=None, node_level=False)


class Cluster:
    """The Kubernetes reads ``pd_leader_target`` makes (a fake: the API server's part is the local tier's)."""

    def __init__(self) -> None:
        self.sts = {"metadata": {"name": "basic-pd", "uid": "sts-uid", "ownerReferences": [
            {"kind": "TidbCluster", "name": "basic", "uid": "tc-uid", "controller": True}]},
            "spec": {"replicas": 3}, "status": {"readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3}}

    async def get_statefulset(self, namespace: str, name: str) -> dict | None:
        return self.sts if name == "basic-pd" else None


async def test_the_leader_is_asked_of_pd_and_asked_again_before_the_injection() -> None:
    """Against a real HTTP server answering /members as PD does; between two asks the leader moves."""
    from aiohttp import web

    from chaosdemo.api.errors import PreflightFailed
    from chaosdemo.run.preflight import pd_leader_target, pd_target_moved

    from .test_pd_moves import serve

    leader = {"name": FQDN.format(1)}

    async def members(_: web.Request) -> web.Response:
        return web.json_response({"members": [{"name": FQDN.format(i)} for i in range(3)], "leader": leader})

    app = web.Application()
    app.router.add_get("/pd/api/v1/members", members)
    runner, pd = await serve(app, 2.0)
    kube = type("Kube", (), {"cluster": Cluster()})()
    try:
        choice = await pd_leader_target(kube, pd, look(0), "pod-kill", "tc-uid")  # type: ignore[arg-type]
        chosen = TARGET.model_copy(update={"pod": choice.pod.name, "pod_uid": choice.pod.uid,
                                           "pd_member": choice.pd_member})
        assert choice.pod.name == "basic-pd-1" and pd_target_moved(chosen, choice) == ""
        leader["name"] = FQDN.format(2)
        again = await pd_leader_target(kube, pd, look(10), "pod-kill", "tc-uid")  # type: ignore[arg-type]
        assert again.pod.name == "basic-pd-2"
        assert pd_target_moved(chosen, again).startswith(f"PD's leader moved from {FQDN.format(1)} to ")
        replaced = replace(again, pd_member=FQDN.format(1), pod=replace(PD_PODS[1], uid="new"))
        assert "was replaced since the target was chosen" in pd_target_moved(chosen, replaced)
        with pytest.raises(PreflightFailed) as e:
            await pd_leader_target(kube, pd, look(0), "node-kill", "tc-uid")  # type: ignore[arg-type]
        assert e.value.reason == "ActionNotForPD"
    finally:
        await pd.aclose()
        await runner.cleanup()

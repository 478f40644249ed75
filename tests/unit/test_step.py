"""The decision core: every way a watch can go, one pure step at a time, no processes."""

from dataclasses import replace

import pytest

from chaosdemo.api.models import TargetStatus
from chaosdemo.api.timestamps import iso
from chaosdemo.core.journal import PodEvent
from chaosdemo.core.snapshot import NodeContainer, NodeState, Snapshot
from chaosdemo.core.step import (
    Detected,
    Failed,
    KeepWaiting,
    Recovered,
    Step,
    UndoNow,
    WatchPlan,
    WatchState,
    step,
)

from .helpers import NOW, healthy, pod, store

INJECTED = NOW
TARGET = TargetStatus(pod="basic-tikv-1", pod_uid="uid-basic-tikv-1", node="node-1", restart_count=0, store_id="2")
PLAN = WatchPlan(injected_at=INJECTED, detection_seconds=120, recovery_seconds=600, stability_seconds=10,
                 target=TARGET)


def at(t: float, **overrides: object) -> Snapshot:
    """A snapshot taken ``t`` seconds after the injection, stores heartbeating (healthy unless told otherwise)."""
    s = healthy(**overrides)
    stores = tuple(replace(st, last_heartbeat_ns=st.last_heartbeat_ns + int(t * 1e9)) for st in s.stores)
    return replace(s, taken_at=INJECTED + t, stores=stores if "stores" not in overrides else s.stores)


def without_target(t: float) -> Snapshot:
    s = at(t)
    return replace(s, pods=tuple(p for p in s.pods if p.name != "basic-tikv-1"))


def event(kind: str, t: float, **pod_kw: object) -> PodEvent:
    return PodEvent(seq=1, received_at=INJECTED + t, type=kind, namespace="tidb-cluster", instance="basic",
                    pod=pod("basic-tikv-1", **pod_kw))  # type: ignore[arg-type]


def run(state: WatchState, *looks: tuple[list[PodEvent], Snapshot], plan: WatchPlan = PLAN) -> list[Step]:
    """Feed looks one after another, as the lifecycle does; every step it returns."""
    steps = []
    for events, snap in looks:
        result = step(state, plan, events, snap)
        steps.append(result)
        state = result.state
    return steps


# --- detection


def test_a_deleted_pods_watch_event_detects_at_its_arrival_even_if_the_snapshot_looks_healthy():
    [s] = run(WatchState(), ([event("DELETED", 0.008)], at(0.5)))
    assert isinstance(s.decision, Detected)
    assert s.decision.at == INJECTED + 0.008
    assert s.decision.breaches[0].invariant == "tikv-pods-ready"
    assert s.state.detected and s.changed
    assert [v.invariant for v in s.state.violations] == ["tikv-pods-ready"]


def test_the_first_event_breach_is_credited_not_a_later_one():
    [s] = run(WatchState(), ([event("MODIFIED", 0.1, deleting=True), event("DELETED", 0.3)], at(0.5)))
    assert isinstance(s.decision, Detected) and s.decision.at == INJECTED + 0.1
    assert "terminating" in s.decision.breaches[0].message


@pytest.mark.parametrize(("snapshot", "invariant"), [
    (without_target(1), "tikv-pods-ready"),
    (at(1, statefulset=replace(healthy().statefulset, ready_replicas=2)), "tikv-statefulset-ready"),
    (at(1, nodes=(NodeState("node-1", "Unknown", "NodeStatusUnknown"),)), "kube-nodes-ready"),
    (at(1, stores=(), pd_error="connection refused"), "pd-reachable"),
    (at(25, stores=(store("1", "basic-tikv-0", age=-24), store("2", "basic-tikv-1", age=-5),
                    store("3", "basic-tikv-2", age=-24))), "pd-store-heartbeats-fresh"),
    (at(1, node_containers=(NodeContainer("node-1", running=False, exit_code=137),)), "kind-node-containers-running"),
    (at(1, region_checks={"down-peer": 0, "pending-peer": 3, "miss-peer": 0, "offline-peer": 0}),
     "pd-regions-healthy"),
])
def test_a_snapshot_breach_detects_by_the_fastest_invariant_that_broke(snapshot, invariant):
    [s] = run(WatchState(), ([], snapshot))
    assert isinstance(s.decision, Detected)
    assert s.decision.breaches[0].invariant == invariant
    assert s.decision.at == snapshot.taken_at


def test_nothing_broken_before_the_detection_deadline_keeps_waiting_and_saves_nothing():
    [s] = run(WatchState(), ([], at(60)))
    assert isinstance(s.decision, KeepWaiting) and not s.changed and not s.state.detected


def test_nothing_broken_after_the_detection_deadline_fails_not_detected():
    [s] = run(WatchState(), ([], at(120.5)))
    assert isinstance(s.decision, Failed)
    assert (s.decision.reason, s.decision.detected) == ("NotDetected", False)
    assert "120s" in s.decision.message


# --- recovery


def test_recovery_needs_the_whole_stability_window_and_dates_from_its_start():
    steps = run(WatchState(), ([event("DELETED", 0.01)], without_target(0.5)), ([], without_target(2)),
                ([], at(3)), ([], at(8)), ([], at(13)))
    decisions = [type(s.decision) for s in steps]
    assert decisions == [Detected, KeepWaiting, KeepWaiting, KeepWaiting, Recovered]
    assert steps[-1].decision.at == INJECTED + 3
    assert steps[1].state.message.startswith("recovering: pod basic-tikv-1 does not exist")
    assert steps[2].state.message == "all invariants hold; confirming for 10s"
    assert [v.cleared for v in steps[-1].state.violations if v.subject == "basic-tikv-1"][-1] is not None


def test_a_breach_inside_the_stability_window_starts_it_again():
    steps = run(WatchState(detected=True), ([], at(3)), ([], without_target(6)), ([], at(7)), ([], at(14)),
                ([], at(17.5)))
    assert [type(s.decision) for s in steps] == [KeepWaiting, KeepWaiting, KeepWaiting, KeepWaiting, Recovered]
    assert steps[1].state.stable_since is None and steps[1].changed
    assert steps[-1].decision.at == INJECTED + 7


def test_still_broken_after_the_recovery_deadline_fails_with_what_is_broken():
    [s] = run(WatchState(detected=True), ([], without_target(600.5)))
    assert isinstance(s.decision, Failed)
    assert (s.decision.reason, s.decision.detected) == ("RecoveryTimeout", True)
    assert "pod basic-tikv-1 does not exist" in s.decision.message


# --- undoing the fault (node-kill)

NODE_KILL = replace(PLAN, undo_after=30)


def test_the_node_restore_is_due_after_its_down_time_and_only_once():
    down = at(29, node_containers=(NodeContainer("node-1", running=False, exit_code=137),))
    [s] = run(WatchState(detected=True), ([], down), plan=NODE_KILL)
    assert isinstance(s.decision, KeepWaiting)
    [s] = run(WatchState(detected=True), ([], replace(down, taken_at=INJECTED + 30)), plan=NODE_KILL)
    assert isinstance(s.decision, UndoNow) and s.changed
    [s] = run(WatchState(detected=True, undone=True), ([], replace(down, taken_at=INJECTED + 31)), plan=NODE_KILL)
    assert isinstance(s.decision, KeepWaiting)


def test_a_restore_that_is_due_still_keeps_the_events_it_read():
    [s] = run(WatchState(detected=True), ([event("DELETED", 29.9)], at(30)), plan=NODE_KILL)
    assert isinstance(s.decision, UndoNow)
    assert any(v.message == "pod basic-tikv-1 was deleted" for v in s.state.violations)


def test_node_container_deaths_and_starts_are_kept_as_evidence():
    dead = (NodeContainer("node-1", running=False, exit_code=137, finished_at="f"),)
    alive = (NodeContainer("node-1", running=True, started_at="s2"),)
    steps = run(WatchState(), ([], at(0.1, node_containers=alive)), ([], at(0.2, node_containers=dead)),
                ([], at(31, node_containers=alive)), plan=PLAN)
    assert [(e.action, e.exit_code) for e in steps[-1].state.containers.events] == [("die", 137), ("start", 0)]


# --- an operator that restarted mid-demo


def replaced_at(t: float, created: float) -> Snapshot:
    return replace(at(t), pods=tuple(replace(p, uid="uid-new", created=iso(INJECTED + created))
                                     if p.name == "basic-tikv-1" else p for p in at(t).pods))


def test_a_resumed_watch_detects_a_fault_it_missed_from_the_replaced_target_timed_by_the_new_pod():
    [s] = run(WatchState(resumed=True), ([], replaced_at(40, created=2)))
    assert isinstance(s.decision, Detected)
    assert s.decision.breaches[0].invariant == "tikv-pod-replaced"
    assert "seen after an operator restart" in s.decision.breaches[0].message
    assert s.decision.at == INJECTED + 2


def test_a_missed_detection_is_never_dated_before_the_injection():
    [s] = run(WatchState(resumed=True), ([], replaced_at(40, created=-3)))
    assert isinstance(s.decision, Detected) and s.decision.at == INJECTED


def test_a_resumed_watch_detects_a_restarted_container_of_the_target():
    restarted = replace(at(5), pods=tuple(replace(p, restart_count=1) if p.name == "basic-tikv-1" else p
                                          for p in at(5).pods))
    [s] = run(WatchState(resumed=True), ([], restarted))
    assert isinstance(s.decision, Detected)
    assert s.decision.breaches[0].invariant == "tikv-container-restarted"


def test_the_targets_own_evidence_is_read_only_on_the_first_step_after_a_resume():
    restarted = replace(at(5), pods=tuple(replace(p, restart_count=1) if p.name == "basic-tikv-1" else p
                                          for p in at(5).pods))
    first, second = run(WatchState(resumed=True), ([], at(1)), ([], restarted))
    assert isinstance(first.decision, KeepWaiting) and not first.state.resumed
    assert isinstance(second.decision, KeepWaiting)


def test_a_resumed_watch_that_had_detected_goes_on_with_recovery():
    [s] = run(WatchState(detected=True, resumed=True), ([], at(50)))
    assert isinstance(s.decision, KeepWaiting) and s.state.stable_since == INJECTED + 50

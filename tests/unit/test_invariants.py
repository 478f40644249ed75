import json
from dataclasses import replace
from pathlib import Path

from chaosdemo.core.invariants import INVARIANTS, InvariantConfig, evaluate, pod_event_breaches
from chaosdemo.core.snapshot import NodeState, StatefulSetState, stores_from_pd

from .helpers import healthy, pod, store

CFG = InvariantConfig(heartbeat_stale_seconds=15)
DATA = Path(__file__).parent / "data"


def names(snapshot):
    return [b.invariant for b in evaluate(snapshot, CFG)]


def test_a_healthy_cluster_breaks_no_invariant():
    assert evaluate(healthy(), CFG) == []


def test_invariants_are_ordered_from_fastest_signal_to_slowest():
    order = [i.name for i in INVARIANTS]
    assert order.index("tikv-pods-ready") < order.index("pd-store-heartbeats-fresh") < order.index("pd-stores-up")


def test_a_terminating_pod_breaks_tikv_pods_ready():
    s = healthy()
    s = replace(s, pods=(pod("basic-tikv-0", deleting=True), *s.pods[1:]))
    breaches = evaluate(s, CFG)
    assert breaches[0].invariant == "tikv-pods-ready"
    assert "terminating" in breaches[0].message


def test_a_missing_ordinal_breaks_tikv_pods_ready():
    s = healthy()
    s = replace(s, pods=s.pods[:2])
    assert any(b.subject == "basic-tikv-2" and "does not exist" in b.message for b in evaluate(s, CFG))


def test_statefulset_with_fewer_ready_replicas_breaks():
    s = healthy(statefulset=StatefulSetState("basic-tikv", 3, 2, 3, 3))
    assert "tikv-statefulset-ready" in names(s)


def test_disconnected_store_from_recorded_pd_json_breaks_stores_up_and_heartbeats():
    payload = json.loads((DATA / "pd_stores_disconnected.json").read_text())
    stores = stores_from_pd(payload, "basic", "tidb-cluster")
    assert [s.id for s in stores] == ["1", "4", "5"], "store of another cluster is ignored"
    s = healthy(stores=stores)
    breaches = evaluate(s, CFG)
    got = {(b.invariant, b.subject) for b in breaches}
    assert ("pd-stores-up", "store-4") in got
    assert ("pd-store-heartbeats-fresh", "store-4") in got
    assert ("pd-store-heartbeats-fresh", "store-1") not in got


def test_pd_state_is_read_from_state_name_because_state_is_omitted_when_up():
    payload = json.loads((DATA / "pd_stores_disconnected.json").read_text())
    assert all("state" not in s["store"] for s in payload["stores"])
    assert stores_from_pd(payload, "basic", "tidb-cluster")[0].state_name == "Up"


def test_stale_heartbeat_is_caught_before_pd_says_disconnected():
    s = healthy(stores=(store("1", "basic-tikv-0", age=16), *healthy().stores[1:]))
    assert names(s) == ["pd-store-heartbeats-fresh"]


def test_unhealthy_region_checks_break_pd_regions_healthy():
    s = healthy(region_checks={"down-peer": 2, "pending-peer": 0, "miss-peer": 1, "offline-peer": 0})
    subjects = [b.subject for b in evaluate(s, CFG) if b.invariant == "pd-regions-healthy"]
    assert subjects == ["down-peer", "miss-peer"]


def test_unhealthy_pd_member_breaks_pd_members_healthy():
    assert names(healthy(pd_members=(("basic-pd-0", False),))) == ["pd-members-healthy"]


def test_unreachable_pd_is_one_breach_not_many():
    assert names(healthy(pd_error="connection refused")) == ["pd-reachable"]


def test_a_not_ready_node_hosting_tikv_breaks_nodes_ready():
    s = healthy(nodes=(NodeState("node-0", "Unknown", "NodeStatusUnknown"), *healthy().nodes[1:]))
    assert names(s) == ["kube-nodes-ready"]


def test_fewer_stores_than_replicas_breaks_stores_up():
    s = healthy(stores=healthy().stores[:2])
    assert names(s) == ["pd-stores-up"]


def test_watch_events_are_judged_as_they_arrive():
    assert pod_event_breaches("DELETED", pod("basic-tikv-1"))[0].message == "pod basic-tikv-1 was deleted"
    assert pod_event_breaches("MODIFIED", pod("basic-tikv-1", deleting=True))[0].subject == "basic-tikv-1"
    assert pod_event_breaches("ADDED", pod("basic-tikv-1", ready=False))
    assert pod_event_breaches("MODIFIED", pod("basic-tikv-1")) == []


def test_a_fault_that_happened_while_the_operator_was_down_is_seen_on_its_target():
    from chaosdemo.core.invariants import target_changed

    s = healthy()
    assert target_changed(s, "basic-tikv-1", "uid-basic-tikv-1", 0) == []
    replaced = replace(s, pods=(s.pods[0], pod("basic-tikv-1", uid="new"), s.pods[2]))
    assert target_changed(replaced, "basic-tikv-1", "uid-basic-tikv-1", 0)[0].invariant == "tikv-pod-replaced"
    restarted = replace(s, pods=(s.pods[0], pod("basic-tikv-1", restarts=2), s.pods[2]))
    assert target_changed(restarted, "basic-tikv-1", "uid-basic-tikv-1", 1)[0].invariant == "tikv-container-restarted"
    gone = replace(s, pods=(s.pods[0], s.pods[2]))
    assert "is gone" in target_changed(gone, "basic-tikv-1", "uid-basic-tikv-1", 0)[0].message


def test_what_pd_says_is_bounded_before_it_can_reach_status():
    """Issue 20, finding 7: a store address or state name of any length from PD makes a bounded breach
    (seen before: the violation message carried it whole)."""
    s = healthy()
    huge = "Tombstone" + "x" * 50_000
    stores = (replace(s.stores[0], state_name=huge, address="a" * 50_000), *s.stores[1:])
    breaches = evaluate(replace(s, stores=stores), InvariantConfig())
    assert breaches and all(len(b.message) <= 300 and len(b.subject) <= 253 for b in breaches)

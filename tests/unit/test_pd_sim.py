"""The SIMULATED PD keeps PD's JSON and PD's timing (scaled by one knob)."""

from chaosdemo_local.simulation.pd_api import region_check, stores_json
from chaosdemo_local.simulation.pd_sim import PDSim, Timing, go_duration, parse_go_duration

T0 = 1_795_520_000.0


def k8s_pod(name, *, uid="u", ready=True, deleting=False, node="w1", restarts=0):
    meta = {"name": name, "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-24T10:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": "tikv", "restartCount": restarts}]}}


PODS = [k8s_pod(f"basic-tikv-{i}", uid=f"u{i}", node=f"w{i}") for i in range(3)]


def booted(scale=1.0):
    sim = PDSim("basic", "tidb-cluster", Timing(scale=scale))
    sim.observe_pods(PODS, T0)
    sim.observe_pods(PODS, T0 + 5 * scale)  # TiKV start-up, then the first heartbeat
    return sim


def state(sim, pod, now):
    return sim.state_name(sim.stores[pod], now)


def test_stores_register_per_pod_address_and_bootstrap_regions():
    sim = booted()
    assert sorted(s.address for s in sim.stores.values())[0] == "basic-tikv-0.basic-tikv-peer.tidb-cluster.svc:20160"
    assert len(sim.regions) == 48 and all(len(r.peers) == 3 for r in sim.regions)


def test_store_json_has_pds_field_names_types_and_omissions():
    sim = booted()
    js = stores_json(sim, T0 + 6)
    assert js["count"] == 3
    store, status = js["stores"][0]["store"], js["stores"][0]["status"]
    assert "state" not in store, "state is omitted when Up (protobuf omitempty)"
    assert store["state_name"] == "Up" and isinstance(store["id"], int)
    assert isinstance(store["last_heartbeat"], int) and store["last_heartbeat"] > 10**18, "unix nanoseconds"
    assert isinstance(status["capacity"], str) and status["capacity"].endswith("GiB")
    assert "pending_peer_count" not in status
    assert status["last_heartbeat_ts"].endswith("000Z")


def test_a_silent_store_is_disconnected_after_20s_and_down_after_max_store_down_time():
    sim = booted()
    gone = [p for p in PODS if p["metadata"]["name"] != "basic-tikv-1"]
    sim.observe_pods(gone, T0 + 6)
    assert state(sim, "basic-tikv-1", T0 + 5 + 19.9) == "Up"
    assert state(sim, "basic-tikv-1", T0 + 5 + 20.1) == "Disconnected"
    assert state(sim, "basic-tikv-1", T0 + 5 + 1800.1) == "Down"


def test_the_time_knob_scales_every_time():
    sim = booted(scale=0.1)
    sim.observe_pods(PODS[:1] + PODS[2:], T0 + 1)
    assert state(sim, "basic-tikv-1", T0 + 0.5 + 2.1) == "Disconnected"


def test_max_store_down_time_is_settable_like_pds_config_api():
    assert parse_go_duration("1m") == 60 and parse_go_duration("1h30m") == 5400
    assert parse_go_duration("500ms") == 0.5
    assert go_duration(470.896421303) == "7m50.896421303s"
    assert go_duration(0.25) == "250ms"


def test_leaders_move_off_a_silent_store_and_come_back_after_catch_up():
    sim = booted()
    sid = sim.stores["basic-tikv-1"].id
    before = sim.leaders(sid)
    assert before > 0
    gone = [p for p in PODS if p["metadata"]["name"] != "basic-tikv-1"]
    for t in range(6, 20):
        sim.observe_pods(gone, T0 + t)
    assert sim.leaders(sid) == 0, "Raft elected new leaders after the election timeout"
    back = [*gone, k8s_pod("basic-tikv-1", uid="new", node="w1")]
    sim.observe_pods(back, T0 + 20)
    sim.observe_pods(back, T0 + 25)  # first heartbeat of the new TiKV
    assert sim.stores["basic-tikv-1"].id == sid, "the store keeps its id"
    assert region_check(sim, "pending-peer", T0 + 26)["count"] > 0, "pending while it catches up"
    for t in range(26, 80):
        sim.observe_pods(back, T0 + t)
    assert region_check(sim, "pending-peer", T0 + 80)["count"] == 0
    assert sim.leaders(sid) >= 15, "leaders rebalanced back"


def test_a_new_pod_under_the_same_name_is_a_new_tikv_process():
    sim = booted()
    hb = sim.stores["basic-tikv-1"].last_heartbeat
    replaced = [PODS[0], k8s_pod("basic-tikv-1", uid="other", node="w1"), PODS[2]]
    sim.observe_pods(replaced, T0 + 7)
    sim.observe_pods(replaced, T0 + 11)
    assert sim.stores["basic-tikv-1"].last_heartbeat == hb, "no heartbeat while the new TiKV starts"


def test_a_container_restart_is_a_new_tikv_process_too():
    sim = booted()
    restarted = [PODS[0], k8s_pod("basic-tikv-1", uid="u1", node="w1", restarts=1), PODS[2]]
    sim.observe_pods(restarted, T0 + 7)
    assert sim.stores["basic-tikv-1"].booting


def test_down_peers_appear_after_tikvs_max_peer_down_duration():
    sim = booted(scale=0.01)
    gone = [p for p in PODS if p["metadata"]["name"] != "basic-tikv-2"]
    for i in range(1, 80):
        sim.observe_pods(gone, T0 + 0.05 + i * 0.1)
    check = region_check(sim, "down-peer", T0 + 0.05 + 6.2)
    assert check["count"] > 0
    region = check["regions"][0]
    assert region["down_peers"][0]["peer"]["role_name"] == "Voter"
    assert "role" not in region["peers"][0], "role is omitted for voters"


def test_a_node_marked_down_stops_its_stores_heartbeats():
    sim = booted()
    sim.down_nodes.add("w0")
    sim.observe_pods(PODS, T0 + 6)
    assert sim.stores["basic-tikv-0"].serving_since is None


def test_serving_stores_heartbeat_on_their_own_schedule_when_no_tick_comes():
    """A tick held up by a busy API server must not make a running store look Disconnected."""
    sim = booted(scale=0.1)
    sim.beat(T0 + 0.5 + 3.05)  # 3 s of PD's scaled time with no look at the pods: three heartbeats
    assert {state(sim, p, T0 + 0.5 + 3.05) for p in sim.stores} == {"Up"}
    assert all(abs(s.last_heartbeat - (T0 + 0.5 + 3.0)) < 1e-6 for s in sim.stores.values()), \
        "heartbeats keep their schedule (every 1 s here), not the time of the answer"


def test_a_restarted_store_is_settled_only_after_its_first_heartbeat_and_its_catch_up():
    sim = booted()
    assert {s["why"] for s in sim.settled(T0 + 6)["stores"].values()} == {""}
    new = [k8s_pod("basic-tikv-1", uid="u1-new", node="w1") if p["metadata"]["name"] == "basic-tikv-1" else p
           for p in PODS]
    sim.observe_pods(new, T0 + 6)
    store = sim.settled(T0 + 6)["stores"]["basic-tikv-1"]
    assert (store["uid"], store["why"]) == ("u1-new", "starting"), "PD still says Up, but no new process heartbeated"
    assert state(sim, "basic-tikv-1", T0 + 6) == "Up"
    sim.beat(T0 + 6 + 5)  # the TiKV start-up: the first heartbeat of the new process
    assert sim.settled(T0 + 6 + 5)["stores"]["basic-tikv-1"]["why"] == "catching up"
    sim.beat(T0 + 6 + 5 + 8)
    assert sim.settled(T0 + 6 + 5 + 8)["stores"]["basic-tikv-1"]["why"] == ""

"""The fault matrix, part 2: what the operator depends on fails during a demo.

The API server restarts, the Docker engine restarts while a killed node is
down, PD misbehaves (hangs, 5xx, garbage, a wrong shape, 4 s answers, or
nothing listening) from the start or from the injection on, and Claude hangs
(in test_lifecycle). No cell may leave a demo stuck, a Lease held or a fault
unrecovered, and nothing a server that is not PD sends reaches status or events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from chaosdemo.api.timestamps import parse_iso
from chaosdemo_local.cluster.control_plane import free_port
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator, lease_exists, node_kill, running
from chaosdemo_local.cluster.tikv import tikv_pods

from .misbehaving_pd import MODES, SLOW_SECONDS, MisbehavingPD

pytestmark = pytest.mark.local

# What the misbehaving PD sends and no status or event may repeat.
FOREIGN = ("not PD at all", "misbehaving", "all fine", "many", "<html>")


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise TimeoutError(what)


def nothing_foreign(demos: Demos, name: str, status: dict[str, Any]) -> None:
    told = json.dumps(status) + json.dumps([e["message"] for e in demos.events(name)])
    assert not [w for w in FOREIGN if w in told], told


def test_a_demo_carries_on_through_a_restart_of_the_api_server(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    assert local_env.cluster is not None
    proc = operator.start()
    before = tikv_pods(local_env)
    demos.apply("apiserver", target={"pod": "basic-tikv-0"}, timeouts={"stabilitySeconds": 3, "recoverySeconds": 120})
    demos.wait("apiserver", ("Diagnosing", "Recovering"))
    local_env.cluster.restart("kube-apiserver", down_seconds=5)
    # As a control plane's restart restarts its scheduler too: kube-scheduler's cache did not always survive
    # the API server's (it logged "Scheduler cache is corrupted", and a TiKV pod stayed Pending for good two
    # tests later). What this test proves is the operator's ride through the outage, not the scheduler's.
    local_env.cluster.restart("kube-scheduler", down_seconds=0)
    st = demos.wait("apiserver", timeout=150)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    assert proc.popen.poll() is None, "the operator rode out the outage"
    assert tikv_pods(local_env)["basic-tikv-0"]["metadata"]["uid"] != before["basic-tikv-0"]["metadata"]["uid"]
    assert {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items() if n != "basic-tikv-0"} == {
        n: p["metadata"]["uid"] for n, p in before.items() if n != "basic-tikv-0"}, "one fault, on the target only"
    assert not lease_exists(local_env)
    local_env.wait_healthy(timeout=60)


def test_a_node_killed_while_the_docker_engine_restarts_is_started_once_the_engine_is_back(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    dockerd = local_env.dockerd
    if dockerd is None or dockerd.process is None:
        pytest.skip(f"no Docker engine of the tier's own to restart: {local_env.docker_error or 'DOCKER_HOST is used'}")
    operator.start()
    node = node_kill(local_env, demos, "engine", 3, timeouts={"stabilitySeconds": 2, "recoverySeconds": 120})
    demos.wait("engine", ("Diagnosing", "Recovering"))
    assert not running(local_env.docker_host, node)
    t0 = time.monotonic()
    dockerd.restart(down_seconds=6)  # the node is due back 3 s after the kill: while the engine is down
    restarted_in = time.monotonic() - t0
    st = demos.wait("engine", timeout=150)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    assert st["injection"]["undoneAt"] and running(local_env.docker_host, node)
    others = [n for n in local_env.cluster.worker_names() if n != node] if local_env.cluster else []
    assert all(running(local_env.docker_host, n) for n in others), "live-restore kept the other nodes running"
    assert not lease_exists(local_env)
    assert restarted_in >= 6
    local_env.wait_healthy(timeout=60)


@pytest.mark.parametrize("mode", ["nothing-listening", *MODES, "slow-health"])
def test_a_pd_sick_from_the_start_gets_nothing_injected_and_the_reason(
        local_env: LocalEnv, operator: Operator, demos: Demos, pd_front: MisbehavingPD, mode: str) -> None:
    before = {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()}
    if mode == "nothing-listening":
        operator.start(CHAOSDEMO_PD_URL_TEMPLATE=f"http://127.0.0.1:{free_port()}")
    else:
        operator.start()  # the shared operator, through the session's front of PD
        pd_front.mode = mode  # type: ignore[assignment]
    t0 = time.monotonic()
    demos.apply("pd-sick")
    st = demos.wait("pd-sick", timeout=60)["status"]
    took = time.monotonic() - t0
    pd_front.mode = "ok"
    assert st["phase"] == "Aborted", st["message"]
    assert "injectedAt" not in st and "injection" not in st
    assert {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()} == before, "nothing was injected"
    pre = demos.condition(demos.get("pd-sick"), "PreflightPassed")
    assert pre["status"] == "False" and "PD at" in pre["message"], pre
    if mode == "slow-health":  # the other reads answered: the refusal names the one that did not, and why
        assert "answered only part of the look" in pre["message"] and "/health" in pre["message"], pre
    nothing_foreign(demos, "pd-sick", st)
    assert not lease_exists(local_env)
    assert took < 30, f"refused in {took:.1f}s, not stuck"


def test_a_pd_that_just_reloaded_its_view_of_the_stores_is_looked_at_again_not_taken_for_a_sick_cluster(
        local_env: LocalEnv, operator: Operator, demos: Demos, pd_front: MisbehavingPD) -> None:
    """PD restarted or its leader moved: every store reads stale at once until PD hears it again."""
    operator.start()
    bound = float(local_env.operator_env()["CHAOSDEMO_HEARTBEAT_STALE_SECONDS"])
    pd_front.reload(bound)  # heard again within one heartbeat bound: the preflight waits up to two
    demos.apply("pd-reloaded", dryRun=True)
    st = demos.wait("pd-reloaded")["status"]
    seen = pd_front.reloaded_views
    pd_front.mode = "ok"
    assert seen >= 1, "the operator saw PD's reloaded view"
    assert st["phase"] == "Succeeded", st["message"]

    pd_front.reload(3600)  # never heard again: refused, saying it is PD's view
    demos.apply("pd-never-heard", dryRun=True)
    st = demos.wait("pd-never-heard")["status"]
    pd_front.mode = "ok"
    assert st["phase"] == "Aborted", st["message"]
    assert "PD's view, not the stores" in st["message"] and "after waiting" in st["message"], st["message"]
    assert not lease_exists(local_env)


def test_a_pd_whose_clock_is_behind_ours_is_judged_on_its_own_clock_not_taken_for_stale_stores(
        local_env: LocalEnv, operator: Operator, demos: Demos, pd_front: MisbehavingPD) -> None:
    """PD stamps heartbeats on its node's clock, 30 s behind the operator's here, and says its time in the Date
    header of every answer (as Go's net/http does): every heartbeat would read 30 s old on ours."""
    operator.start()
    pd_front.mode = "skewed"
    demos.apply("pd-skewed", dryRun=True)
    st = demos.wait("pd-skewed")["status"]
    pd_front.mode = "ok"
    assert st["phase"] == "Succeeded", st["message"]


def test_a_pd_that_answers_slower_than_the_default_timeout_is_waited_for_when_the_timeout_allows(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """A dry run: the preflight's looks at PD are the same reads as a demo's, so a timeout that allows them is
    proven without a fault to recover from (a whole demo at 4 s a look cost this tier 26 s)."""
    with MisbehavingPD(local_env.pd_url, "slow") as pd:
        operator.start(CHAOSDEMO_PD_URL_TEMPLATE=pd.url, CHAOSDEMO_PD_TIMEOUT_SECONDS=str(SLOW_SECONDS + 2))
        demos.apply("pd-slow", dryRun=True)
        st = demos.wait("pd-slow", timeout=120)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    took = parse_iso(st["finishedAt"]) - parse_iso(st["startedAt"])
    assert took >= SLOW_SECONDS, f"a look at PD takes {SLOW_SECONDS:g} s: the preflight waited for one ({took:.1f} s)"


@pytest.mark.parametrize("mode", MODES)
def test_a_pd_sick_for_a_while_after_the_injection_still_ends_in_a_proven_recovery(
        local_env: LocalEnv, operator: Operator, demos: Demos, pd_front: MisbehavingPD, mode: str) -> None:
    operator.start()
    demos.apply("pd-flaky", timeouts={"stabilitySeconds": 2, "recoverySeconds": 120})
    until("injected", lambda: demos.get("pd-flaky").get("status", {}).get("injectedAt"))
    pd_front.mode = mode  # type: ignore[assignment]
    until("the sick PD on the record", lambda: "pd-reachable" in {
        v["invariant"] for v in demos.get("pd-flaky").get("status", {}).get("violations") or []})
    healed = time.time()  # from here on every answer is PD's own
    pd_front.mode = "ok"
    st = demos.wait("pd-flaky", timeout=150)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    sick = [v for v in st["violations"] if v["invariant"] == "pd-reachable"]
    assert sick, "the sick PD is on the record"
    # Recovery is proven only once PD answers again: PD's breach clears, recovery is dated no earlier than
    # that (a look is dated by its start), and the demo ends only after PD answered again.
    cleared = max(parse_iso(v["cleared"]) for v in sick)
    assert all(parse_iso(v["firstSeen"]) <= cleared for v in sick) and parse_iso(st["recoveredAt"]) >= cleared
    assert parse_iso(st["finishedAt"]) >= healed, "Succeeded only after PD answered again"
    nothing_foreign(demos, "pd-flaky", st)
    assert not lease_exists(local_env)


def test_a_pd_that_stays_sick_after_the_injection_fails_the_demo_at_its_deadline(
        local_env: LocalEnv, operator: Operator, demos: Demos, pd_front: MisbehavingPD) -> None:
    operator.start()
    demos.apply("pd-gone", timeouts={"stabilitySeconds": 1, "detectionSeconds": 5, "recoverySeconds": 10})
    until("injected", lambda: demos.get("pd-gone").get("status", {}).get("injectedAt"))
    pd_front.mode = "5xx"
    t0 = time.monotonic()
    st = demos.wait("pd-gone", timeout=60)["status"]
    took = time.monotonic() - t0
    pd_front.mode = "ok"
    assert st["phase"] == "Failed", st["message"]
    rec = demos.condition(demos.get("pd-gone"), "Recovered")
    assert rec["status"] == "False", rec
    assert "pd-reachable" in st["message"] or "PD" in st["message"], st["message"]
    assert took < 35, f"failed {took:.0f}s after PD went away, at the 10 s deadline, not stuck"
    nothing_foreign(demos, "pd-gone", st)
    assert not lease_exists(local_env)
    local_env.wait_healthy(timeout=60)

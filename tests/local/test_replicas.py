"""Two operator replicas at once, and many demos at once: never two faults on one cluster, and ten
clusters served at once by one operator.

Leader election runs against the real API server: the Lease, its renewals and
its takeover are the API server's. The replicas are real operator processes.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
import yaml

from chaosdemo.clients.kube import KubeClient
from chaosdemo.leadership import LEASE_NAME, Leadership, Timing
from chaosdemo_local.env import LocalEnv
from chaosdemo_local.fleet import Fleet

from .conftest import Demos, Operator, claude_control, lease_exists, now_iso, operator_deletions

pytestmark = pytest.mark.local


def leader_of(env: LocalEnv) -> str:
    out = env.kubectl("get", "lease", LEASE_NAME, "-n", "default", "-o", "jsonpath={.spec.holderIdentity}",
                      check=False)
    return out.stdout.strip()


async def _election(env: LocalEnv) -> None:
    kube_a, kube_b = await KubeClient.connect(str(env.kubeconfig)), await KubeClient.connect(str(env.kubeconfig))
    ns = f"election-{uuid.uuid4().hex[:6]}"
    env.kubectl("create", "namespace", ns)
    timing = Timing.for_lease(3.0)
    a, b = Leadership(kube_a, ns, "replica-a", timing), Leadership(kube_b, ns, "replica-b", timing)
    try:
        run_a = asyncio.create_task(a.run())
        await asyncio.wait_for(a.leading.wait(), 5)
        run_b = asyncio.create_task(b.run())
        await asyncio.sleep(timing.lease * 1.5)
        assert a.leading.is_set() and not b.leading.is_set(), "a renewing leader keeps the Lease"
        run_a.cancel()  # a freezes: no renewals, no release
        frozen = time.monotonic()
        await asyncio.wait_for(b.leading.wait(), timing.lease * 3)
        waited = time.monotonic() - frozen
        assert waited >= timing.lease - timing.retry, f"taken over after {waited:.1f}s, before the lease ran out"
        run_a = asyncio.create_task(a.run())  # a thaws, still believing it leads: its first renewal fails
        await asyncio.sleep(timing.lease * 1.5)
        assert b.leading.is_set() and not a.leading.is_set(), "the old leader stepped down, not took it back"
        await b.release()
        run_b.cancel()
        released = time.monotonic()
        await asyncio.wait_for(a.leading.wait(), timing.lease)
        assert time.monotonic() - released < timing.lease - timing.retry, "a clean release hands over at once"
        run_a.cancel()
    finally:
        await kube_a.aclose()
        await kube_b.aclose()
        env.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_leader_lease_is_kept_by_renewals_taken_over_only_when_it_lapses_and_handed_over_on_release(
        local_env: LocalEnv) -> None:
    asyncio.run(_election(local_env))


def test_two_replicas_run_a_demo_once_and_the_standby_finishes_it_when_the_leader_is_killed(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    first, second = operator.start(), operator.start()
    deadline = time.monotonic() + 20
    while "leading:" not in first.output() + second.output():
        assert time.monotonic() < deadline, "nobody leads"
        time.sleep(0.2)
    leader, standby = (first, second) if "leading:" in first.output() else (second, first)
    since = now_iso()
    demos.apply("twice", target={"pod": "basic-tikv-1"}, timeouts={"stabilitySeconds": 3})
    st = demos.wait("twice", timeout=90)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    # The line the operator logs when it posts the FaultInjected event: kopf's debug log of either replica
    # also shows the condition type FaultInjected in the bodies it receives, so the bare word proves nothing.
    injected = f"{demos.ns}/twice FaultInjected:"
    assert injected in leader.output() and injected not in standby.output()
    local_env.wait_healthy(timeout=60)
    demos.apply("handover", target={"pod": "basic-tikv-2"}, timeouts={"stabilitySeconds": 3})
    demos.wait("handover", ("Detecting", "Diagnosing", "Recovering"))
    leader.stop(signal.SIGKILL)
    st = demos.wait("handover", timeout=90)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    assert "leading:" in standby.output(), "the standby took over"
    gone = operator_deletions(local_env, since)
    assert gone == ["basic-tikv-1", "basic-tikv-2"], f"one fault per demo, never two: {gone}"
    assert not lease_exists(local_env)


def test_twenty_demos_at_once_on_one_cluster_run_one_fault(local_env: LocalEnv, operator: Operator,
                                                           demos: Demos) -> None:
    operator.start()
    names = [f"crowd-{i:02d}" for i in range(20)]
    docs = [demos.manifest(n, timeouts={"stabilitySeconds": 5}) for n in names]
    since = now_iso()
    local_env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    ends = {n: demos.wait(n, timeout=120)["status"] for n in names}
    gone = operator_deletions(local_env, since)
    phases = sorted(st["phase"] for st in ends.values())
    assert phases == ["Aborted"] * 19 + ["Succeeded"], phases
    busy = {n: st["message"] for n, st in ends.items() if st["phase"] == "Aborted"}
    assert all(m.startswith("ClusterBusy") for m in busy.values()), busy
    assert len(gone) == 1, f"exactly one fault: {gone}"
    assert not lease_exists(local_env)
    local_env.wait_healthy(timeout=60)


@pytest.fixture
def fleet(local_env: LocalEnv) -> Iterator[Fleet]:
    """Ten more SIMULATED TidbClusters, with one simulated PD process serving each its own PD."""
    f = Fleet(local_env, 10)
    try:
        yield f.start()
    finally:
        f.stop()


def test_ten_demos_on_ten_clusters_at_once_all_finish_with_one_operator(
        local_env: LocalEnv, operator: Operator, fleet: Fleet) -> None:
    operator.start(CHAOSDEMO_PD_URL_TEMPLATE=fleet.template)
    docs = fleet.demos(timeouts={"detectionSeconds": 60, "recoverySeconds": 120, "stabilitySeconds": 1})
    t0 = time.monotonic()
    local_env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    demos = Demos(local_env, fleet.namespace)
    ends = {d["metadata"]["name"]: demos.wait(d["metadata"]["name"], timeout=240)["status"] for d in docs}
    took = time.monotonic() - t0
    assert {n: st["phase"] for n, st in ends.items()} == {f"demo-{n}": "Succeeded" for n in fleet.names}, {
        n: st["message"] for n, st in ends.items()}
    targets = {st["target"]["pod"].rsplit("-tikv-", 1)[0] for st in ends.values()}
    assert targets == set(fleet.names), "each demo hit its own cluster"
    recovery = sorted(st["recoverySeconds"] for st in ends.values())
    print(f"10 demos on 10 clusters, one operator: all Succeeded in {took:.0f}s; recovery "
          f"{recovery[0]:.1f}-{recovery[-1]:.1f}s")


def test_a_leader_that_steps_down_mid_diagnosis_leaves_no_diagnosis_running_behind_it(
        local_env: LocalEnv, operator: Operator, demos: Demos, fake_claude: str) -> None:
    """The orphaned diagnosis, reproduced through the lifecycle: a run stopped while Claude is still
    answering must take its diagnosis along, or the old answer lands on the resumed run's status."""
    answer = {"summary": "TiKV pod basic-tikv-2 was deleted.", "root_cause": "pod deleted",
              "fault_class": "pod-failure", "affected_pod": "basic-tikv-2", "affected_store": "",
              "affected_node": "", "confidence": 0.8, "evidence": ["basic-tikv-2 has a new uid"],
              "recommended_actions": []}
    claude_control(fake_claude, mode="timeout", delay=6, answer=answer, reset=True)  # answers after 6 s
    proc = operator.start(ANTHROPIC_API_KEY="sk-ant-local-test-key", ANTHROPIC_BASE_URL=fake_claude,
                          CHAOSDEMO_CLAUDE_TIMEOUT_SECONDS="30", CHAOSDEMO_CLAUDE_MAX_RETRIES="0")
    demos.apply("orphan", target={"pod": "basic-tikv-2"}, timeouts={"stabilitySeconds": 20, "recoverySeconds": 120})
    demos.wait("orphan", ("Diagnosing",))
    deadline = time.monotonic() + 20
    while not claude_control(fake_claude):
        assert time.monotonic() < deadline, "Claude was never asked"
        time.sleep(0.1)
    # Another replica takes the Lease (for an hour): this one's next renewal conflicts and it steps down.
    local_env.kubectl("patch", "lease", LEASE_NAME, "-n", "default", "--type=merge",
                      "-p", '{"spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 3600}}')
    while "no longer leading" not in proc.output():
        assert time.monotonic() < deadline, "the replica did not step down"
        time.sleep(0.1)
    time.sleep(8)  # longer than Claude takes: an orphaned diagnosis would have written by now
    assert "diagnosis" not in demos.get("orphan")["status"]
    assert "Diagnosed" not in [e["reason"] for e in demos.events("orphan")]
    local_env.kubectl("patch", "lease", LEASE_NAME, "-n", "default", "--type=merge",
                      "-p", '{"spec": {"holderIdentity": ""}}')
    st = demos.wait("orphan", timeout=90)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    assert st["diagnosis"]["engine"] == "claude"
    assert [e["reason"] for e in demos.events("orphan")].count("Diagnosed") == 1
    assert len(claude_control(fake_claude)) == 2, "the stopped run's request was dropped, the resumed run asked again"

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
from chaosdemo.service.leadership import LEASE_NAME, Leadership, Timing
from chaosdemo_local.bench.fleet import Fleet
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator, claude_control, lease_exists, now_iso, operator_deletions

pytestmark = pytest.mark.local


def leader_of(env: LocalEnv) -> str:
    out = env.kubectl("get", "lease", LEASE_NAME, "-n", "default", "-o", "jsonpath={.spec.holderIdentity}",
                      check=False)
    return out.stdout.strip()


async def _election(env: LocalEnv) -> None:
    """Two replicas' rounds against the real API server, on one clock the test moves: the rules are checked
    at the exact moments they speak of, whatever the load of the machine."""
    kube_a, kube_b = await KubeClient.connect(str(env.kubeconfig)), await KubeClient.connect(str(env.kubeconfig))
    ns = f"election-{uuid.uuid4().hex[:6]}"
    env.kubectl("create", "namespace", ns)
    now = [0.0]
    timing = Timing.for_lease(3.0)  # renew deadline 2 s, a round every 0.4 s

    def clock() -> float:
        return now[0]

    async def rounds(seconds: float, *replicas: Leadership) -> None:
        """``seconds`` of the replicas' rounds, one every ``retry``."""
        end = now[0] + seconds
        while now[0] < end - 1e-9:
            now[0] += timing.retry
            for r in replicas:
                await r.step()

    a, b = Leadership(kube_a, ns, "replica-a", timing, clock), Leadership(kube_b, ns, "replica-b", timing, clock)
    try:
        await a.step()
        assert a.leading.is_set(), "the first replica takes the free Lease"
        await rounds(timing.lease * 1.5, a, b)
        assert a.leading.is_set() and not b.leading.is_set(), "a renewing leader keeps the Lease"
        frozen = now[0]  # a freezes: no renewals, no release
        while not b.leading.is_set():
            await rounds(timing.retry, b)
            assert now[0] - frozen <= timing.lease + timing.retry, "b never took over the lapsed Lease"
        waited = now[0] - frozen
        assert timing.lease - timing.retry <= waited, f"taken over after {waited:.1f}s, before the lease ran out"
        await a.step()  # a thaws, still believing it leads: its renewal fails, or its deadline has passed
        await rounds(timing.lease * 1.5, a, b)
        assert b.leading.is_set() and not a.leading.is_set(), "the old leader stepped down, not took it back"
        await b.release()
        await rounds(timing.retry, a)
        assert a.leading.is_set(), "a clean release hands over at the next round"
    finally:
        await kube_a.aclose()
        await kube_b.aclose()
        env.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_leader_lease_is_kept_by_renewals_taken_over_only_when_it_lapses_and_handed_over_on_release(
        local_env: LocalEnv) -> None:
    asyncio.run(_election(local_env))


def test_two_replicas_run_a_demo_once_and_the_standby_finishes_it_when_the_leader_is_killed(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    first, second = operator.start(own=True), operator.start(own=True)
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
    """Ten more SIMULATED TidbClusters with spec.tlsCluster.enabled, and one simulated PD process serving each
    its own PD over TLS only, asking for a client certificate of the clusters' CA as PD does; each cluster's
    client Secret exists (certificates made with openssl in tidb-operator's shape: cluster/tidb_pki.py)."""
    f = Fleet(local_env, 10, tls=True)
    try:
        yield f.start()
    finally:
        f.stop()


def test_ten_demos_on_ten_tls_clusters_at_once_all_finish_with_one_operator(
        local_env: LocalEnv, operator: Operator, fleet: Fleet) -> None:
    """Each demo reads its cluster's client Secret and its PD over TLS, though the operator's template says
    http: the TidbCluster, not the template, says the cluster speaks TLS. Without the Secret, refused."""
    operator.start(CHAOSDEMO_PD_URL_TEMPLATE=fleet.template)
    assert fleet.template.startswith("http://")
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
    print(f"10 demos on 10 TLS clusters, one operator: all Succeeded in {took:.0f}s; recovery "
          f"{recovery[0]:.1f}-{recovery[-1]:.1f}s")

    name = fleet.names[0]
    local_env.kubectl("delete", "secret", f"{name}-cluster-client-secret", "-n", fleet.namespace)
    refused = fleet.demos(dryRun=True)[0]
    refused["metadata"]["name"] = "no-client-secret"
    local_env.kubectl("apply", "-f", "-", input=yaml.safe_dump(refused))
    st = demos.wait("no-client-secret")["status"]
    assert st["phase"] == "Aborted", st["message"]
    assert "ClusterTLS" in {c.get("reason") for c in st["conditions"]}, st["conditions"]
    assert f"Secret {fleet.namespace}/{name}-cluster-client-secret" in st["message"], st["message"]
    assert "spec.tlsCluster.enabled" in st["message"], st["message"]


def test_a_leader_that_steps_down_mid_diagnosis_leaves_no_diagnosis_running_behind_it(
        local_env: LocalEnv, operator: Operator, demos: Demos, fake_claude: str) -> None:
    """The orphaned diagnosis, reproduced through the lifecycle: a run stopped while Claude is still
    answering must take its diagnosis along, or the old answer lands on the resumed run's status."""
    answer = {"summary": "TiKV pod basic-tikv-2 was deleted.", "root_cause": "pod deleted",
              "fault_class": "pod-failure", "affected_pod": "basic-tikv-2", "affected_store": "",
              "affected_node": "", "confidence": 0.8, "evidence": ["basic-tikv-2 has a new uid"],
              "cited_evidence": ["V1"],
              "recommended_actions": []}
    claude_control(fake_claude, mode="timeout", delay=6, answer=answer, reset=True)  # answers after 6 s
    proc = operator.start(ANTHROPIC_API_KEY="sk-ant-local-test-key", ANTHROPIC_BASE_URL=fake_claude,
                          CHAOSDEMO_CLAUDE_TIMEOUT_SECONDS="30", CHAOSDEMO_CLAUDE_MAX_RETRIES="0")
    # The run cannot end before Claude answers (it waits for its diagnosis), so a short stability window
    # still leaves the step-down below in the middle of the run.
    demos.apply("orphan", target={"pod": "basic-tikv-2"}, timeouts={"stabilitySeconds": 3, "recoverySeconds": 120})
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
    # The stopped run hangs up on Claude: the stand-in sees the caller drop its request before it answers
    # (it answers after 6 s), so no answer can come back to an orphaned diagnosis.
    while (outcome := claude_control(fake_claude)[0]["outcome"]) == "pending":
        assert time.monotonic() < deadline, "the stopped run's request to Claude is still open"
        time.sleep(0.1)
    assert outcome == "dropped by the caller", outcome
    assert "diagnosis" not in demos.get("orphan")["status"]
    assert "Diagnosed" not in [e["reason"] for e in demos.events("orphan")]
    local_env.kubectl("patch", "lease", LEASE_NAME, "-n", "default", "--type=merge",
                      "-p", '{"spec": {"holderIdentity": ""}}')
    st = demos.wait("orphan", timeout=90)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    assert st["diagnosis"]["engine"] == "claude"
    assert [e["reason"] for e in demos.events("orphan")].count("Diagnosed") == 1
    assert len(claude_control(fake_claude)) == 2, "the stopped run's request was dropped, the resumed run asked again"

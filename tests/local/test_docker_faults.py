"""The Docker-level faults against a real Docker engine (Debian's docker.io, started by the tests).

In the local tier each worker node is a real container running that node's
simulated kubelet (kwok), so ``docker kill`` really stops the node: its lease
stops, the controller-manager marks it NotReady, and the SIMULATED PD stops
its stores. container-kill's step inside a node needs a kind node image
(crictl); here its Docker side runs for real and is refused with the reason.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import pytest

from chaosdemo.api.errors import DockerUnavailable, FaultUnavailable, NotAKindNode
from chaosdemo.api.models import TargetStatus
from chaosdemo.api.timestamps import parse_iso
from chaosdemo.clients.docker import DockerClient
from chaosdemo.core.undo import UndoEntry
from chaosdemo.run.faults import NodeKill
from chaosdemo_local.cluster.docker_nodes import docker_cli
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import (
    NO_LEADER_ELECTION,
    Demos,
    Operator,
    PhaseWatch,
    node_kill,
    pod_away_from_pd,
    running,
)
from chaosdemo_local.cluster.tikv import tikv_pods

pytestmark = [pytest.mark.local, pytest.mark.docker]


def test_node_kill_kills_the_node_container_restarts_it_and_the_cluster_recovers(
        local_env: LocalEnv, docker_host: str, operator: Operator, demos: Demos) -> None:
    operator.start()
    watch = PhaseWatch(local_env, demos.ns, "nk")
    since = f"{time.time():.3f}"
    node = node_kill(local_env, demos, "nk", 3, timeouts={"stabilitySeconds": 2})
    phases = watch.phases(timeout=90)
    assert phases[-1] == "Succeeded", phases
    st = demos.get("nk")["status"]
    assert st["target"]["node"] == node
    assert st["detectedBy"] == "kind-node-containers-running", "Docker's own state is the fastest signal"
    inj = st["injection"]
    assert "docker kill -s SIGKILL" in inj["detail"]
    # The Docker engine's own record, to the nanosecond: one kill, one start, at least nodeDownSeconds apart,
    # and the start was the operator's restore (before it wrote undoneAt, and before the demo recovered).
    log = docker_cli(docker_host, "events", "--since", since, "--until", f"{time.time():.3f}", "--filter",
                     f"container={node}", "--filter", "event=die", "--filter", "event=start",
                     "--format", "{{.Action}} {{.TimeNano}}").stdout.decode().split("\n")
    events = [(a, int(t) / 1e9) for a, t in (line.split() for line in log if line.strip())]
    assert [a for a, _ in events] == ["die", "start"], events
    down = events[1][1] - events[0][1]
    assert down >= 3, f"the node stayed down {down:.3f}s for nodeDownSeconds=3"
    assert events[1][1] <= parse_iso(inj["undoneAt"]) + 0.001 and inj["undoneAt"] <= st["recoveredAt"]
    # Seen while the node was down, from Docker's state: detected between the engine's die and start (how
    # fast is measured by `make bench`, not bounded by a wall clock here: 1.19 s was seen under a cold build).
    assert events[0][1] - 0.001 <= parse_iso(st["detectedAt"]) <= events[1][1], (st["detectedAt"], events)
    seen = {v["invariant"] for v in st["violations"]}
    assert {"kind-node-containers-running", "pd-stores-up"} <= seen, seen
    d = st["diagnosis"]
    assert (d["faultClass"], d["affectedNode"], d["matchesInjectedFault"]) == ("node-failure", node, True)
    assert "FaultUndone" in [e["reason"] for e in demos.events("nk")]
    assert running(docker_host, node)
    assert local_env.healthy()[0]


def test_a_node_killed_by_an_operator_that_then_crashed_is_restarted_by_the_next_one(
        local_env: LocalEnv, docker_host: str, operator: Operator, demos: Demos) -> None:
    first = operator.start(**NO_LEADER_ELECTION)
    node = node_kill(local_env, demos, "nk-crash", 2, timeouts={"stabilitySeconds": 1})
    demos.wait("nk-crash", ("Detecting", "Diagnosing", "Recovering"))
    first.stop(signal.SIGKILL)
    assert not running(docker_host, node)
    time.sleep(3)
    assert not running(docker_host, node), "nobody restarts the node while the operator is down"
    operator.start()
    st = demos.wait("nk-crash", timeout=90)["status"]
    assert st["phase"] == "Succeeded" and st["injection"]["undoneAt"]
    assert running(docker_host, node)
    assert [e["reason"] for e in demos.events("nk-crash")].count("FaultInjected") <= 1, "never killed twice"
    assert "docker kill -s SIGKILL" in st["injection"]["detail"]


def test_deleting_a_suite_while_its_node_kill_holds_the_node_down_starts_the_node(
        local_env: LocalEnv, docker_host: str, operator: Operator, demos: Demos) -> None:
    """The operator deletes a deleted suite's demos (the garbage collector, through their ownerReference, is the
    backstop: it learns a new CRD only at its next discovery, 20 s later here), and the demo's deletion, as
    any demo's, never leaves a node down: started at once, not after its 60 s."""
    operator.start()
    local_env.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemoSuite",
        "metadata": {"name": "cut", "namespace": demos.ns},
        "spec": {"cluster": {"name": "basic", "namespace": "tidb-cluster"}, "steps": [
            {"name": "node", "fault": {"action": "node-kill", "nodeDownSeconds": 60}, "canary": {"enabled": False},
             "target": {"pod": pod_away_from_pd(local_env)},  # as node_kill(): PD's node stays up
             "timeouts": {"detectionSeconds": 30, "recoverySeconds": 120, "stabilitySeconds": 1}}]}}))
    deadline = time.monotonic() + 60
    while local_env.kubectl("get", "chaosdemo", "cut-r1-node", "-n", demos.ns, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the suite never created its step's demo"
        time.sleep(0.2)
    demos.wait("cut-r1-node", ("Diagnosing", "Recovering"))
    node = demos.get("cut-r1-node")["status"]["target"]["node"]
    assert not running(docker_host, node)
    local_env.kubectl("delete", "chaosdemosuite", "cut", "-n", demos.ns, "--timeout=30s")
    deadline = time.monotonic() + 30
    while local_env.kubectl("get", "chaosdemo", "cut-r1-node", "-n", demos.ns, check=False).returncode == 0:
        assert time.monotonic() < deadline, "the suite's demo outlived the suite by 30 s"
        time.sleep(0.2)
    assert running(docker_host, node), "the demo's finalizer never leaves a node down"
    local_env.wait_healthy(timeout=60)


def ledger(env: LocalEnv) -> dict[str, str]:
    """The operator's undo ledger (its namespace is 'default' here: no POD_NAMESPACE outside a pod)."""
    out = env.kubectl("get", "configmap", "chaosdemo-undo-ledger", "-n", "default", "-o", "json", check=False)
    return dict(json.loads(out.stdout).get("data") or {}) if out.returncode == 0 else {}


def wait_running(host: str, node: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not running(host, node):
        assert time.monotonic() < deadline, f"kind node {node} still down after {timeout}s"
        time.sleep(0.2)


def delete_past_the_finalizer(env: LocalEnv, demos: Demos, name: str) -> None:
    env.kubectl("patch", "chaosdemo", name, "-n", demos.ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    env.kubectl("delete", "chaosdemo", name, "-n", demos.ns, "--timeout=30s")
    assert env.kubectl("get", "chaosdemo", name, "-n", demos.ns, check=False).returncode != 0, "gone"


def release_the_gone_demos_lease(env: LocalEnv, demos: Demos, name: str) -> None:
    """A demo deleted past its finalizer may not have let go of its cluster's Lease (its run, if an operator was
    running it, does on its way out): the next demo's preflight takes it over from a demo that is gone; the test
    that removed the finalizer by hand removes such a Lease too."""
    out = env.kubectl("get", "lease", "chaosdemo-basic", "-n", "tidb-cluster", "-o", "json", check=False)
    if out.returncode != 0 and "NotFound" in out.stderr:
        return
    holder = json.loads(out.stdout)["spec"]["holderIdentity"]
    assert holder.startswith(f"{demos.ns}/{name}/"), holder
    env.kubectl("delete", "lease", "chaosdemo-basic", "-n", "tidb-cluster")


def test_a_node_whose_demo_was_deleted_past_its_finalizer_is_started_by_the_next_operator(
        local_env: LocalEnv, docker_host: str, operator: Operator, demos: Demos) -> None:
    """Issue 20, finding 9: before the operator kept its own record, this node stayed down for good."""
    first = operator.start(**NO_LEADER_ELECTION)
    node = node_kill(local_env, demos, "nk-orphan", 300, timeouts={"recoverySeconds": 600})
    demos.wait("nk-orphan", ("Detecting", "Diagnosing", "Recovering"))
    assert len(ledger(local_env)) == 1, "recorded before the kill"
    first.stop(signal.SIGKILL)
    assert not running(docker_host, node)
    delete_past_the_finalizer(local_env, demos, "nk-orphan")
    operator.start(**NO_LEADER_ELECTION)
    wait_running(docker_host, node, timeout=60)  # at startup, not after nodeDownSeconds (300 s)
    assert ledger(local_env) == {}, "cleared once undone"
    local_env.wait_healthy(timeout=60)
    release_the_gone_demos_lease(local_env, demos, "nk-orphan")


def test_a_running_operator_starts_a_node_whose_demo_vanished_at_its_next_ledger_check(
        local_env: LocalEnv, docker_host: str, operator: Operator, demos: Demos) -> None:
    """And one entry that cannot be undone, ahead of it in the ledger, does not keep it down (issue 30: the
    reconciler stopped at the first entry whose undo raised, every round)."""
    operator.start(CHAOSDEMO_UNDO_CHECK_SECONDS="2")
    node = node_kill(local_env, demos, "nk-vanish", 300, timeouts={"recoverySeconds": 600})
    demos.wait("nk-vanish", ("Detecting", "Diagnosing", "Recovering"))
    assert not running(docker_host, node)
    stuck = UndoEntry(action="node-kill", demo="a-stuck/gone/uid-0", cluster_ns="tidb-cluster", pod="basic-tikv-9",
                      pod_uid="uid-9", node="no-such-kind-node", since="2026-12-01T00:00:00.000Z",
                      due="2026-12-01T00:00:30.000Z")  # its node does not exist: its undo fails every round
    local_env.kubectl("patch", "configmap", "chaosdemo-undo-ledger", "-n", "default", "--type=merge",
                      "-p", json.dumps({"data": {stuck.key: stuck.text()}}))
    try:
        delete_past_the_finalizer(local_env, demos, "nk-vanish")
        wait_running(docker_host, node, timeout=60)
        assert list(ledger(local_env)) == [stuck.key], "the node's entry dropped once undone; the stuck one kept"
    finally:
        local_env.kubectl("patch", "configmap", "chaosdemo-undo-ledger", "-n", "default", "--type=json",
                          "-p", json.dumps([{"op": "remove", "path": f"/data/{stuck.key}"}]), check=False)
    local_env.wait_healthy(timeout=60)
    release_the_gone_demos_lease(local_env, demos, "nk-vanish")


def test_node_kill_without_docker_access_is_aborted_with_the_reason(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    operator.start(DOCKER_HOST="unix:///nonexistent/docker.sock")
    before = {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()}
    demos.apply("nodocker", fault={"action": "node-kill"})
    st = demos.wait("nodocker")["status"]
    assert st["phase"] == "Aborted" and "DockerUnavailable" in st["message"]
    assert {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()} == before


def test_container_kill_runs_its_docker_side_and_refuses_a_node_without_crictl(
        local_env: LocalEnv, docker_host: str, operator: Operator, demos: Demos) -> None:
    operator.start()
    demos.apply("ck", fault={"action": "container-kill"})
    st = demos.wait("ck")["status"]
    assert st["phase"] == "Aborted"
    assert "NoContainerRuntimeCLI" in st["message"] and "crictl does not run in node container" in st["message"]
    assert local_env.cluster is not None
    assert all(running(docker_host, n) for n in local_env.cluster.worker_names())


@pytest.mark.parametrize("action", ["process-pause", "network-partition"])
def test_a_gray_fault_is_refused_on_a_node_without_a_kind_nodes_tools_and_nothing_is_left_in_the_ledger(
        local_env: LocalEnv, docker_host: str, operator: Operator, demos: Demos, action: str) -> None:
    """The local tier's nodes run kwok, not containerd: the gray faults run on the kind tier (tests/e2e)."""
    operator.start()
    demos.apply("gray", fault={"action": action})
    st = demos.wait("gray")["status"]
    assert st["phase"] == "Aborted" and "NoNodeTools" in st["message"], st["message"]
    assert "this fault needs a kind node" in st["message"]
    assert ledger(local_env) == {}, "refused before anything was recorded"


def test_the_docker_client_refuses_a_container_that_is_not_a_kind_node(docker_host: str, local_env: LocalEnv) -> None:
    name = f"not-a-node-{uuid.uuid4().hex[:6]}"
    assert local_env.cluster is not None
    image = json.loads(docker_cli(docker_host, "inspect", local_env.cluster.worker_names()[0]).stdout)[0]["Image"]
    docker_cli(docker_host, "run", "-d", "--name", name, image, "/bin/sleep", "300")
    try:
        async def attempt() -> None:
            client = DockerClient(docker_host)
            try:
                with pytest.raises(NotAKindNode) as refused:
                    await client.kill(name)
                assert refused.value.reason == "NotAKindNode"
                with pytest.raises(NotAKindNode) as refused:
                    await client.kind_node("no-such-container")
                assert refused.value.reason == "NodeContainerNotFound"
                # The client refuses; the fault decides that a refusal aborts the demo.
                with pytest.raises(FaultUnavailable) as aborted:
                    await NodeKill(docker=client, undo_after=30).check("tidb-cluster", TargetStatus(node=name))
                assert aborted.value.reason == "NotAKindNode"
            finally:
                await client.aclose()

        asyncio.run(attempt())
        assert running(docker_host, name), "the container was not touched"
    finally:
        docker_cli(docker_host, "rm", "-f", name, check=False)


def test_a_cluster_not_healthy_by_the_deadline_fails_the_demo_and_the_node_is_still_restored(
        local_env: LocalEnv, docker_host: str, operator: Operator, demos: Demos) -> None:
    operator.start()
    node = node_kill(local_env, demos, "late", 9,
                     timeouts={"detectionSeconds": 5, "recoverySeconds": 10, "stabilitySeconds": 5})
    st = demos.wait("late", timeout=60)["status"]
    assert st["phase"] == "Failed"
    assert "RecoveryTimeout" in [c["reason"] for c in st["conditions"] if c["type"] == "Succeeded"]
    assert "was not healthy 10s after the injection" in st["message"]
    assert st["injection"]["undoneAt"] and running(docker_host, node)
    assert st["diagnosis"]["faultClass"] == "node-failure", "a failed demo still gets its diagnosis"
    local_env.wait_healthy(timeout=60)


def test_an_exec_in_a_node_that_does_not_finish_is_docker_unavailable_not_a_hang(docker_host: str,
                                                                               local_env: LocalEnv) -> None:
    """Issue 30: a wedged node cannot hang an undo for ever; the exec's bound ends it and the undo is retried."""
    node = local_env.cluster.worker_names()[0]  # type: ignore[union-attr]

    async def attempt() -> float:
        client = DockerClient(docker_host, exec_seconds=1)
        try:
            assert await client.exec(node, ["sh", "-c", "echo ok"]) == (0, "ok\n")
            t0 = time.monotonic()
            with pytest.raises(DockerUnavailable) as slow:
                await client.exec(node, ["sleep", "3"])  # ends by itself: nothing is left in the node
            assert "did not finish in 1s" in slow.value.message
            return time.monotonic() - t0
        finally:
            await client.aclose()

    assert asyncio.run(attempt()) < 2.5

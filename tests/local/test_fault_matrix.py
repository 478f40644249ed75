"""The fault matrix, part 1: the operator SIGKILLed at every step of a demo.

For pod-delete and node-kill, an operator started with ``CHAOSDEMO_CRASH_AT``
sends itself SIGKILL at one crash point (``chaosdemo.run.crashpoints.POINTS``: the
Lease held, the intent written, the fault call returned, and the first status
write of Detecting, Diagnosing and Recovering). A fresh operator then takes
over. Every cell checks, from outside the operator: the demo ends Succeeded,
the fault happened exactly once (the API server's audit log of the pod
deletions the operator asked for, and its watch of the target pod; or the
Docker engine's own event log of the node container), the node runs again,
the Lease is released and the cluster is healthy.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from chaosdemo.api.settings import POINTS
from chaosdemo_local.cluster.docker_nodes import docker_cli
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import (
    NO_LEADER_ELECTION,
    Demos,
    Operator,
    lease_exists,
    now_iso,
    operator_deletions,
    running,
)
from chaosdemo_local.cluster.tikv import pod_away_from_pd, tikv_pods

pytestmark = pytest.mark.local


def pod_watch(env: LocalEnv, pod: str) -> subprocess.Popen[str]:
    """The API server's own account of the target pod: one line per watch event."""
    assert env.cluster is not None
    return subprocess.Popen(
        [str(env.cluster.bin_dir / "kubectl"), "--kubeconfig", str(env.kubeconfig), "get", "pod", pod,
         "-n", "tidb-cluster", "-w", "--output-watch-events", "-o",
         "jsonpath={.type} {.object.metadata.uid}{'\\n'}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def deleted_uids(watch: subprocess.Popen[str]) -> set[str]:
    watch.terminate()
    out, _ = watch.communicate(timeout=10)
    return {line.split()[1] for line in out.splitlines() if line.startswith("DELETED ")}


def node_deaths(host: str, node: str, since: str) -> list[str]:
    """The Docker engine's log of the node container since ``since`` (Unix seconds): every die event."""
    until = f"{time.time():.3f}"
    out = docker_cli(host, "events", "--since", since, "--until", until, "--filter", f"container={node}",
                     "--filter", "event=die", "--format", "{{.Action}}")
    return out.stdout.decode().split()


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("action", ["pod-delete", "node-kill"])
def test_an_operator_sigkilled_at_each_step_is_succeeded_by_one_that_finishes_the_demo_with_one_fault(
        local_env: LocalEnv, operator: Operator, demos: Demos, action: str, point: str) -> None:
    host = local_env.docker_host
    if action == "node-kill" and not host:
        pytest.skip(f"no Docker engine in the local tier: {local_env.docker_error}")
    pod = pod_away_from_pd(local_env)
    node = tikv_pods(local_env)[pod]["spec"]["nodeName"]
    first_uid = tikv_pods(local_env)[pod]["metadata"]["uid"]
    since, since_iso = f"{time.time():.3f}", now_iso()
    watch = pod_watch(local_env, pod)
    try:
        doomed = operator.start(CHAOSDEMO_CRASH_AT=point, **NO_LEADER_ELECTION)
        fault = {"action": action, "nodeDownSeconds": 2} if action == "node-kill" else {"action": action}
        demos.apply("crash", fault=fault, target={"pod": pod},
                    timeouts={"stabilitySeconds": 1, "detectionSeconds": 30, "recoverySeconds": 90})
        assert doomed.popen.wait(timeout=60) == -signal.SIGKILL, doomed.output()[-2000:]
        died_in = demos.get("crash").get("status", {}).get("phase", "(none)")
        operator.start()
        st = demos.wait("crash", timeout=120)["status"]
    finally:
        gone = deleted_uids(watch)
    assert st["phase"] == "Succeeded", f"killed in {died_in}: {st['message']}"
    assert not lease_exists(local_env), "the Lease was released"
    assert local_env.cluster is not None
    everyone = [d for d in local_env.cluster.deletions("tidb-cluster", "basic-tikv-") if d["at"] >= since_iso]
    if action == "pod-delete":
        assert first_uid in gone, f"the target pod went (killed in {died_in})"
        assert operator_deletions(local_env, since_iso) == [pod], \
            f"the operator deleted the target once (killed in {died_in}); all deletions: {everyone}"
    else:
        assert host is not None
        assert node_deaths(host, node, since) == ["die"], f"the node was killed exactly once (killed in {died_in})"
        assert running(host, node), "the node runs again"
        assert st["injection"]["undoneAt"]
        assert not operator_deletions(local_env, since_iso), f"node-kill deletes no pod: {everyone}"
    assert st["detectionSeconds"] >= 0 and st["recoverySeconds"] > st["detectionSeconds"]
    local_env.wait_healthy(timeout=60)

"""ChaosDemoSuites on the local tier (issue 33): a real operator creates each step as a ChaosDemo the suite
owns, in order, after the pause, and gives the run a verdict. A suite deleted mid-run (its demo's fault undone
by the demo's own deletion) is in test_docker_faults.py, where a node-kill holds a node down."""

from __future__ import annotations

import signal
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml

from chaosdemo.api.timestamps import parse_iso
from chaosdemo_local.cluster.admin import ControlPlaneError
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import (
    NO_LEADER_ELECTION,
    Demos,
    Operator,
    api,
    lease_exists,
    now_iso,
    operator_deletions,
)

from .test_plugin_and_metrics import kubectl_plugin

pytestmark = pytest.mark.local

STEP = {"timeouts": {"detectionSeconds": 30, "recoverySeconds": 60, "stabilitySeconds": 1},
        "canary": {"enabled": False}}  # as Demos.manifest: the canary's baseline is test_canary's


def apply_suite(env: LocalEnv, ns: str, name: str, steps: list[dict[str, Any]], **spec: Any) -> None:
    body = {"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemoSuite",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"cluster": {"name": "basic", "namespace": "tidb-cluster"},
                     "steps": [{**STEP, **s} for s in steps], **spec}}
    env.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))


def suite(env: LocalEnv, ns: str, name: str) -> dict[str, Any]:
    return api(env, f"/apis/chaosdemo.dev/v1alpha1/namespaces/{ns}/chaosdemosuites/{name}")


def demo_or_none(env: LocalEnv, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return api(env, f"/apis/chaosdemo.dev/v1alpha1/namespaces/{ns}/chaosdemos/{name}")
    except ControlPlaneError as e:
        if "HTTP 404" in str(e):
            return None
        raise


def until(what: str, check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)
    return got


def test_a_suite_runs_a_control_and_a_fault_in_order_and_gives_the_run_its_verdict(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """Through an operator SIGKILLed while the first step runs: the next one takes the suite and its demo up
    from their statuses, and no step is created or told twice."""
    doomed = operator.start(**NO_LEADER_ELECTION)
    since = now_iso()
    apply_suite(local_env, demos.ns, "gate", pauseSeconds=2, steps=[
        {"name": "control", "fault": {"action": "none"}, "timeouts": {**STEP["timeouts"], "detectionSeconds": 5}},
        {"name": "kill", "fault": {"action": "pod-kill"}}])
    until("the control step running", lambda: (suite(local_env, demos.ns, "gate").get("status") or {}).get(
        "steps", [{}])[0].get("demo"), timeout=60)
    doomed.stop(signal.SIGKILL)
    operator.start()
    st = until("a verdict", lambda: (suite(local_env, demos.ns, "gate").get("status") or {}).get("verdict") and
               suite(local_env, demos.ns, "gate")["status"])
    assert st["verdict"] == "Succeeded" and st["phase"] == "Succeeded", st
    assert st["totals"] == {"passed": 2, "failed": 0, "falseAlarms": 0, "skipped": 0}, st["totals"]
    assert [(s["name"], s["demo"], s["phase"]) for s in st["steps"]] == [
        ("control", "gate-r1-control", "Succeeded"), ("kill", "gate-r1-kill", "Succeeded")]
    assert st["steps"][1]["detectionSeconds"] is not None and st["steps"][1]["diagnosisMatches"] is True
    uid = suite(local_env, demos.ns, "gate")["metadata"]["uid"]
    control, kill = demos.get("gate-r1-control"), demos.get("gate-r1-kill")
    for d in (control, kill):
        assert [o["uid"] for o in d["metadata"]["ownerReferences"]] == [uid], "owned by the suite"
        assert d["metadata"]["labels"]["chaosdemo.dev/suite"] == "gate"
    # The control held on the healthy cluster: a target chosen, nothing seen, nothing deleted by the operator.
    cst = control["status"]
    assert cst["message"].startswith("no-fault control held") and "detectedAt" not in cst, cst["message"]
    assert cst["target"]["pod"] and operator_deletions(local_env, since) == [kill["status"]["target"]["pod"]], \
        "the operator deleted the pod-kill step's target, and nothing during the control"
    paused = parse_iso(kill["status"]["startedAt"]) - parse_iso(control["status"]["finishedAt"])
    assert paused >= 2, f"the next step started {paused:.2f}s after the last one ended: pauseSeconds is 2"
    assert "Succeeded" in local_env.kubectl("get", "chaosdemosuites", "-n", demos.ns).stdout
    def told() -> list[str]:  # the suite's Events, in the order posted (their names end in nanoseconds)
        found = api(local_env, f"/api/v1/namespaces/{demos.ns}/events"
                               "?fieldSelector=involvedObject.kind%3DChaosDemoSuite")["items"]
        return [e["reason"] for e in sorted(found, key=lambda e: e["metadata"]["name"])]

    # Told once the status holds the verdict, so the last Event may come a moment after it.
    until("the run's end told", lambda: "RunSucceeded" in told(), timeout=30)
    assert told() == ["RunStarted", "StepStarted", "StepStarted", "RunSucceeded"], \
        "kubectl describe tells the run, nothing twice through the crash"
    junit = kubectl_plugin(local_env, "report", "-n", demos.ns, "--suite", "gate", "-o", "junit")
    assert junit.returncode == 0, junit.stderr
    assert sorted(c.get("name") for c in ET.fromstring(junit.stdout).iter("testcase")) == [
        f"{demos.ns}/gate-r1-control", f"{demos.ns}/gate-r1-kill"]
    assert kubectl_plugin(local_env, "report", "-n", demos.ns, "--suite", "nope", "-o", "junit").returncode == 3
    assert not lease_exists(local_env)

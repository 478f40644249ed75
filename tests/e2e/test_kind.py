"""Every fault action end to end on a real kind cluster, and the effect a real kubelet shows.

The cluster is real (kubelets, containerd, kube-proxy, CoreDNS); PD and TiKV are
STAND-IN processes in its pods (the names say so), PD's store states coming only
from the heartbeats the TiKV stand-ins send it over the pod network.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from chaosdemo.timeutil import parse_iso
from chaosdemo_local.kind import KindEnv

from .conftest import REPO

pytestmark = pytest.mark.kind
TERMINAL = ("Succeeded", "Failed", "Aborted")
NS = "tidb-cluster"


def tikv_pods(env: KindEnv) -> dict[str, dict[str, Any]]:
    items = env.kubectl_json("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=tikv")["items"]
    return {p["metadata"]["name"]: p for p in items}


def restarts(pod: dict[str, Any]) -> int:
    return sum(c.get("restartCount", 0) for c in pod.get("status", {}).get("containerStatuses") or [])


def pd_events(env: KindEnv) -> list[dict[str, str]]:
    """What the PD stand-in heard from the TiKV processes (through the API server's service proxy)."""
    out = env.kubectl("get", "--raw", f"/api/v1/namespaces/{NS}/services/basic-pd:2379/proxy/chaosdemo-standin/events")
    events: list[dict[str, str]] = json.loads(out.stdout)
    return events


def run_demo(env: KindEnv, sample: str, **spec: Any) -> dict[str, Any]:
    env.wait_healthy(timeout=300)
    doc = yaml.safe_load((REPO / "deploy" / "samples" / sample).read_text())
    name = doc["metadata"]["name"] = f"e2e-{doc['metadata']['name']}"
    for key, value in spec.items():
        doc["spec"].setdefault(key, {}).update(value)
    env.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    deadline = time.monotonic() + 900
    while True:
        obj = env.kubectl_json("get", "chaosdemo", name, "-n", NS)
        st = obj.get("status") or {}
        if st.get("phase") in TERMINAL:
            break
        assert time.monotonic() < deadline, f"{name} still {st.get('phase')}: {st.get('message')}"
        time.sleep(2)
    assert st["phase"] == "Succeeded", st.get("message")
    assert 0 <= st["detectionSeconds"] < st["recoverySeconds"]
    assert st["diagnosis"]["matchesInjectedFault"] is True, st["diagnosis"]["grading"]
    events = env.kubectl_json("get", "events", "-n", NS, "--field-selector", f"involvedObject.name={name}")["items"]
    assert {"FaultInjected", "FailureDetected", "Recovered", "Succeeded"} <= {e["reason"] for e in events}
    ok, why = env.healthy()
    assert ok, why
    print(f"{sample}: detected in {st['detectionSeconds']}s by {st['detectedBy']}, recovered in "
          f"{st['recoverySeconds']}s; {st['message']}")
    return obj


def test_the_charts_two_replicas_elect_one_leader(kind_env: KindEnv) -> None:
    pods = kind_env.kubectl_json("get", "pods", "-n", "chaosdemo-system", "-l",
                                 "app.kubernetes.io/name=chaosdemo-operator")["items"]
    names = sorted(p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running")
    assert len(names) == 2, names
    deadline = time.monotonic() + 60
    holder = ""
    while not any(holder.startswith(n + "-") for n in names):
        assert time.monotonic() < deadline, f"no replica leads: holder {holder!r}"
        time.sleep(1)
        holder = kind_env.kubectl("get", "lease", "chaosdemo-operator", "-n", "chaosdemo-system", "-o",
                                  "jsonpath={.spec.holderIdentity}", check=False).stdout.strip()
    leader = next(n for n in names if holder.startswith(n + "-"))
    logs = {n: kind_env.kubectl("logs", n, "-n", "chaosdemo-system", check=False).stdout for n in names}
    assert "leading:" in logs[leader] and not any("leading:" in logs[n] for n in names if n != leader)


def test_pod_delete_sends_sigterm_and_the_statefulset_recreates_the_pod(kind_env: KindEnv) -> None:
    obj = run_demo(kind_env, "chaosdemo.yaml")
    st = obj["status"]
    target, injected = st["target"], parse_iso(st["injectedAt"])
    assert tikv_pods(kind_env)[target["pod"]]["metadata"]["uid"] != target["podUid"], "a new pod"
    goodbyes = [e for e in pd_events(kind_env) if e["pod"] == target["pod"] and e["event"] == "process-stopping"
                and parse_iso(e["at"]) >= injected - 1]
    assert goodbyes and goodbyes[-1]["detail"] == "SIGTERM", "the TiKV stand-in was asked to stop, not killed"


def test_pod_kill_takes_the_pod_away_at_once(kind_env: KindEnv) -> None:
    obj = run_demo(kind_env, "pod-kill.yaml")
    st = obj["status"]
    target = st["target"]
    new = tikv_pods(kind_env)[target["pod"]]
    assert new["metadata"]["uid"] != target["podUid"]
    # Grace 0: the API object goes at once, so the StatefulSet's replacement is created within seconds.
    assert parse_iso(new["metadata"]["creationTimestamp"]) - parse_iso(st["injectedAt"]) < 5


def test_container_kill_restarts_the_container_in_the_same_pod(kind_env: KindEnv) -> None:
    obj = run_demo(kind_env, "container-kill.yaml")
    st = obj["status"]
    target, injected = st["target"], parse_iso(st["injectedAt"])
    pod = tikv_pods(kind_env)[target["pod"]]
    assert pod["metadata"]["uid"] == target["podUid"], "the same pod"
    assert restarts(pod) == target["restartCount"] + 1, "the kubelet restarted the killed container once"
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137, "SIGKILL"
    heard = [e for e in pd_events(kind_env) if e["pod"] == target["pod"] and parse_iso(e["at"]) >= injected - 1]
    assert [e["event"] for e in heard] == ["process-started"], "no goodbye: killed; then a new TiKV process"


def test_node_kill_stops_the_kind_node_and_the_operator_starts_it_again(kind_env: KindEnv) -> None:
    # Long enough for the node lifecycle controller to call the Node NotReady (its grace period is 50 s).
    obj = run_demo(kind_env, "node-kill.yaml", fault={"nodeDownSeconds": 70})
    st = obj["status"]
    target, injected = st["target"], parse_iso(st["injectedAt"])
    assert st["injection"]["restoredAt"]
    node = json.loads(kind_env.docker("inspect", target["node"]).stdout)[0]
    assert node["State"]["Running"] and parse_iso(node["State"]["StartedAt"][:26] + "Z") > injected
    assert any(v["invariant"] == "kube-nodes-ready" and v["subject"] == target["node"] for v in st["violations"]), \
        "the Node went NotReady while its machine was down"
    pod = tikv_pods(kind_env)[target["pod"]]
    assert pod["spec"]["nodeName"] == target["node"] and restarts(pod) > target["restartCount"], \
        "kubelet and containerd brought the pod back on its node"

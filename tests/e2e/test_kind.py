"""Every fault action end to end on kind, against a real TiDB cluster (the kind tier)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from .conftest import REPO

pytestmark = pytest.mark.kind
TERMINAL = ("Succeeded", "Failed", "Aborted")


def kubectl(*args: str, input: str | None = None) -> str:
    return subprocess.run(["kubectl", *args], check=True, capture_output=True, text=True, input=input).stdout


def cluster_healthy() -> bool:
    tc = json.loads(kubectl("get", "tidbcluster", "basic", "-n", "tidb-cluster", "-o", "json"))
    ready = next((c for c in tc.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})
    stores = tc.get("status", {}).get("tikv", {}).get("stores", {})
    return ready.get("status") == "True" and len(stores) == 3 and all(s["state"] == "Up" for s in stores.values())


@pytest.mark.parametrize("sample", ["chaosdemo.yaml", "pod-kill.yaml", "container-kill.yaml", "node-kill.yaml"])
def test_each_fault_action_is_detected_diagnosed_and_recovered_on_kind(kind_cluster: object, sample: str) -> None:
    deadline = time.monotonic() + 600
    while not cluster_healthy():
        assert time.monotonic() < deadline, "the TidbCluster did not settle before the demo"
        time.sleep(5)
    doc = yaml.safe_load((REPO / "deploy" / "samples" / sample).read_text())
    name = doc["metadata"]["name"] = f"e2e-{doc['metadata']['name']}"
    kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    deadline = time.monotonic() + 1800
    while True:
        obj = json.loads(kubectl("get", "chaosdemo", name, "-n", "tidb-cluster", "-o", "json"))
        phase = (obj.get("status") or {}).get("phase")
        if phase in TERMINAL:
            break
        assert time.monotonic() < deadline, f"{name} still {phase}"
        time.sleep(5)
    st = obj["status"]
    assert phase == "Succeeded", st.get("message")
    assert 0 <= st["detectionSeconds"] < st["recoverySeconds"]
    assert st["detectedBy"] and st["diagnosis"]["faultClass"] != ""
    assert st["diagnosis"]["matchesInjectedFault"] is True, st["diagnosis"]["grading"]
    events = json.loads(kubectl("get", "events", "-n", "tidb-cluster", "--field-selector",
                                f"involvedObject.name={name}", "-o", "json"))["items"]
    reasons = {e["reason"] for e in events}
    assert {"FaultInjected", "FailureDetected", "Recovered", "Succeeded"} <= reasons
    assert cluster_healthy()

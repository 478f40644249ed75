"""The no-fault control (action none) on the local tier: a real operator, a real API server. When something
breaks during its window (here the test itself deletes a TiKV pod, as anything but the demo could), it is a
false alarm, recorded as a detection. On a healthy cluster it holds and the operator deletes nothing: the
first step of the suite in test_suite.py, which checks that."""

from __future__ import annotations

import time

from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator, lease_exists, now_iso, operator_deletions


def test_a_control_fails_as_a_false_alarm_when_something_breaks_during_its_window(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """The control that holds on a healthy cluster is the first step of tests/local/test_suite.py's suite."""
    operator.start()
    since = now_iso()
    demos.apply("alarmed", fault={"action": "none"}, timeouts={"detectionSeconds": 60})
    demos.wait("alarmed", ("Detecting",))
    victim = demos.get("alarmed")["status"]["target"]["pod"]
    local_env.kubectl("delete", "pod", victim, "-n", local_env.tidb_namespace, "--wait=false")
    t0 = time.monotonic()
    st = demos.wait("alarmed", timeout=60)["status"]
    assert st["phase"] == "Failed", st["message"]
    assert {c["type"]: c.get("reason") for c in st["conditions"]}["Succeeded"] == "FalseAlarm"
    assert st["detectedBy"] and "though nothing was injected" in st["message"], st["message"]
    assert time.monotonic() - t0 < 30, "ended at the false alarm, not at the window's end"
    assert operator_deletions(local_env, since) == [], "the test deleted the pod, not the operator"
    assert not lease_exists(local_env)
    local_env.wait_healthy(timeout=90)

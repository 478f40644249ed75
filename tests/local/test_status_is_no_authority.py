"""Issue 20, finding 1: the operator takes no authority from its own status.

Whoever may patch a ChaosDemo's status could once make a resumed run act on the target the status
names, past the namespace allow-list and the preflight. Both tests were seen to fail before the fix:
the first deleted tidb-cluster/basic-tikv-0 on behalf of a demo of another namespace.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator
from chaosdemo_local.cluster.tikv import tikv_pods


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def forge(env: LocalEnv, ns: str, name: str, target: dict[str, Any]) -> None:
    """What a user allowed to patch status writes: a run that has recorded its intent on ``target``."""
    status = {"conditions": [], "phase": "Pending", "message": "", "finishedAt": None,
              "injection": {"action": "pod-delete", "requestedAt": now()}, "target": target}
    env.kubectl("patch", "chaosdemo", name, "-n", ns, "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": status}))


def wait_end(demos: Demos, name: str, timeout: float = 60) -> dict[str, Any]:
    return demos.wait(name, timeout=timeout)["status"]


def test_a_status_patched_to_resume_on_another_namespaces_pod_is_refused(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """The issue's reproduction: an Aborted cross-namespace demo, its status rewritten, the operator restarted."""
    operator.stop_shared()
    operator.start(CHAOSDEMO_TARGET_NAMESPACES="")  # the chart's default: a demo targets its own namespace
    demos.apply("walk-around", target={"pod": "basic-tikv-0"})
    first = wait_end(demos, "walk-around")
    assert first["phase"] == "Aborted" and "NamespaceNotAllowed" in first["message"], first
    operator.stop_all()
    victim = tikv_pods(local_env)["basic-tikv-0"]
    forge(local_env, demos.ns, "walk-around", {"pod": "basic-tikv-0", "podUid": victim["metadata"]["uid"],
                                               "node": victim["spec"]["nodeName"], "storeId": "1"})
    operator.start(CHAOSDEMO_TARGET_NAMESPACES="")
    st = wait_end(demos, "walk-around")
    assert st["phase"] == "Failed" and "RecordRefused" in st["message"] and "nothing was touched" in st["message"], st
    assert tikv_pods(local_env)["basic-tikv-0"]["metadata"]["uid"] == victim["metadata"]["uid"], "untouched"


def test_a_status_naming_a_pod_the_tidbcluster_does_not_own_is_refused(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """In an allowed namespace, a pod named like a TiKV but not of the TidbCluster's StatefulSet."""
    operator.stop_shared()
    planted = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "basic-tikv-7", "namespace": "tidb-cluster"},
               "spec": {"containers": [{"name": "c", "image": "local.invalid/none"}]}}
    local_env.kubectl("apply", "-f", "-", input=json.dumps(planted))
    try:
        uid = local_env.kubectl_json("get", "pod", "basic-tikv-7", "-n", "tidb-cluster")["metadata"]["uid"]
        own = Demos(local_env, "tidb-cluster")
        name = f"planted-{int(time.time())}"
        own.apply(name, target={"pod": "basic-tikv-0"})
        forge(local_env, "tidb-cluster", name, {"pod": "basic-tikv-7", "podUid": uid, "node": "", "storeId": "9"})
        operator.start()
        st = wait_end(own, name)
        local_env.kubectl("delete", "chaosdemo", name, "-n", "tidb-cluster", "--wait=false")
        assert st["phase"] == "Failed" and "not controlled by StatefulSet basic-tikv" in st["message"], st
        still = local_env.kubectl_json("get", "pod", "basic-tikv-7", "-n", "tidb-cluster")
        assert still["metadata"]["uid"] == uid, "the planted pod was not deleted"
    finally:
        local_env.kubectl("delete", "pod", "basic-tikv-7", "-n", "tidb-cluster", "--wait=false", check=False)


def test_a_forged_kopf_annotation_cannot_keep_a_demo_from_being_deleted(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """Issue 30: kopf's state is no trust boundary either. Whoever may patch a demo can write annotations; kopf's
    progress kept there let a "delayed to 2999" record stop the deletion handler for ever (the demo stayed
    Terminating, and a fault it held stayed with it). Kept in the status, which only the operator writes."""
    operator.start()
    demos.apply("forged", dryRun=True)
    assert wait_end(demos, "forged")["phase"] == "Succeeded"
    forged = {"started": now(), "delayed": "2999-01-01T00:00:00.000000+00:00", "purpose": "delete", "retries": 1,
              "success": False, "failure": False, "message": "forged"}
    local_env.kubectl("annotate", "chaosdemo", "forged", "-n", demos.ns, "--overwrite",
                      f"kopf.zalando.org/cleanup={json.dumps(forged)}",
                      "kopf.zalando.org/last-handled-configuration={not json")
    t0 = time.monotonic()
    local_env.kubectl("delete", "chaosdemo", "forged", "-n", demos.ns, "--wait=true", "--timeout=30s")
    assert time.monotonic() - t0 < 30


def test_a_demo_whose_deletion_kopf_cannot_finish_is_reported_not_silently_stuck(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """Issue 30: whatever keeps a demo's handlers from running (here, a progress record written into the status
    by the cluster's admin, who alone may still write it), the watchdog says so on the demo itself."""
    operator.start(CHAOSDEMO_STUCK_SECONDS="2", CHAOSDEMO_UNDO_CHECK_SECONDS="1")
    demos.apply("held", dryRun=True)
    assert wait_end(demos, "held")["phase"] == "Succeeded"
    delayed = {"started": now(), "delayed": "2999-01-01T00:00:00.000000+00:00", "purpose": "delete", "retries": 1,
               "success": False, "failure": False, "message": "held by the admin"}
    local_env.kubectl("patch", "chaosdemo", "held", "-n", demos.ns, "--subresource=status", "--type=merge",
                      "-p", json.dumps({"status": {"kopf": {"progress": {"cleanup": delayed}}}}))
    local_env.kubectl("delete", "chaosdemo", "held", "-n", demos.ns, "--wait=false")
    try:
        deadline = time.monotonic() + 30
        while not [e for e in demos.events("held") if e["reason"] == "Stuck"]:
            assert time.monotonic() < deadline, f"never reported: {[e['reason'] for e in demos.events('held')]}"
            time.sleep(0.2)
        said = next(e for e in demos.events("held") if e["reason"] == "Stuck")
        assert said["type"] == "Warning" and "deletion handler has not let it go" in said["message"]
    finally:
        local_env.kubectl("patch", "chaosdemo", "held", "-n", demos.ns, "--type=merge",
                          "-p", '{"metadata":{"finalizers":null}}', check=False)

"""The operator against a real API server (local tier: simulated kubelets, TiKV and PD).

Each test runs the operator as a process and drives it the way a user does:
apply a ChaosDemo, then read its status and events.
"""

from __future__ import annotations

import json
import re
import signal
import time
import uuid

import pytest
import yaml

from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import (
    NO_LEADER_ELECTION,
    Demos,
    Operator,
    PhaseWatch,
    claude_control,
    lease_exists,
)
from chaosdemo_local.cluster.tikv import tikv_pods

pytestmark = pytest.mark.local


@pytest.mark.parametrize("action", ["pod-delete", "pod-kill"])
def test_a_pod_fault_runs_every_phase_and_ends_recovered_with_timings_and_a_diagnosis(
        local_env: LocalEnv, operator: Operator, demos: Demos, action: str) -> None:
    operator.start()
    before = tikv_pods(local_env)
    watch = PhaseWatch(local_env, demos.ns, "first")
    demos.apply("first", fault={"action": action}, timeouts={"stabilitySeconds": 2})
    phases = watch.phases()
    assert phases[phases.index("Pending"):] == ["Pending", "Injecting", "Detecting", "Diagnosing", "Recovering",
                                                "Succeeded"]
    st = demos.get("first")["status"]
    target = st["target"]
    assert target["pod"] in before and target["podUid"] == before[target["pod"]]["metadata"]["uid"]
    assert target["storeAddress"] == f"{target['pod']}.basic-tikv-peer.tidb-cluster.svc:20160"
    assert target["storeId"].isdigit() and target["node"].startswith("chaosdemo-worker")
    assert st["detectedBy"] == "tikv-pods-ready", "a pod deletion is seen first in the Kubernetes watch"
    # Detected from the old pod's watch event, before its replacement was running (how fast: `make bench`).
    replacement = tikv_pods(local_env)[target["pod"]]
    assert replacement["metadata"]["uid"] != target["podUid"]
    assert 0 <= st["detectionSeconds"] and st["detectedAt"] <= max(
        c["lastTransitionTime"] for c in replacement["status"]["conditions"] if c["type"] == "Ready")[:19] + "Z"
    assert st["recoverySeconds"] > st["detectionSeconds"]
    for key in ("startedAt", "injectedAt", "detectedAt", "diagnosedAt", "recoveredAt", "finishedAt"):
        assert st[key].endswith("Z"), key
    assert st["injection"]["detail"].endswith(f"grace period {0 if action == 'pod-kill' else 30}s")
    assert any(v["invariant"] == "tikv-pods-ready" and v["subject"] == target["pod"] for v in st["violations"])
    assert all(v.get("cleared") for v in st["violations"]), "every violation cleared by the end"
    d = st["diagnosis"]
    assert (d["engine"], d["faultClass"], d["affectedPod"]) == ("rules", "pod-failure", target["pod"])
    assert d["matchesInjectedFault"] is True and "ANTHROPIC_API_KEY" in d["fallbackReason"]
    assert {c["status"] for c in st["conditions"]} == {"True"}
    seen = {o["observer"]: o for o in st["observers"]}
    assert seen.keys() == {"kubernetes", "pd", "tidb-operator", "chaosdemo"}
    assert seen["chaosdemo"]["sawFaultAt"] == st["detectedAt"] and seen["chaosdemo"]["sawEndAt"] == st["recoveredAt"]
    assert seen["kubernetes"]["sawFaultSeconds"] is not None and seen["kubernetes"]["sawEndAt"], seen["kubernetes"]
    for who in ("pd", "tidb-operator"):  # each either never saw it, or saw its end before the demo ended
        assert seen[who]["what"] == "never showed the fault" or seen[who]["sawEndAt"] <= st["finishedAt"], seen[who]
    # The story in the order it happened, as the API lists it and as kubectl describe shows it (it sorts by
    # lastTimestamp, whole seconds, keeping the listed order within a second): most of it is one second.
    story = ["Started", "TargetSelected", "FaultInjected", "FailureDetected", "Recovered", "Succeeded"]
    listed = [e["reason"] for e in demos.events("first")]
    described = local_env.kubectl("describe", "chaosdemo", "first", "-n", demos.ns).stdout
    shown = [line.split()[1] for line in described.split("Events:", 1)[1].splitlines()
             if line.split()[:1] in (["Normal"], ["Warning"])]
    for reasons in (listed, shown):
        assert [r for r in reasons if r in story] == story, reasons
        assert reasons.index("FailureDetected") < reasons.index("Diagnosed") < reasons.index("Succeeded"), reasons
    after = tikv_pods(local_env)
    assert after[target["pod"]]["metadata"]["uid"] != target["podUid"], "the StatefulSet recreated the pod"
    assert local_env.healthy()[0], local_env.healthy()[1]
    assert not lease_exists(local_env), "the cluster is released for the next demo"


def test_the_printer_columns_tell_the_story_in_one_line(local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    operator.start()
    demos.apply("columns", target={"pod": "basic-tikv-0"})
    demos.wait("columns")
    line = local_env.kubectl("get", "cdemo", "columns", "-n", demos.ns, "--no-headers").stdout.split()
    assert line[:5] == ["columns", "basic", "pod-delete", "basic-tikv-0", "Succeeded"]
    assert float(line[5]) < 1 and float(line[6]) > 0 and line[7] == "pod-failure"
    wide = local_env.kubectl("get", "chaos", "-n", demos.ns, "-o", "wide").stdout
    assert "DETECTED-BY" in wide and "tikv-pods-ready" in wide, "category chaos lists ChaosDemos"


def test_a_named_target_is_hit_and_a_seed_repeats_its_choice(local_env: LocalEnv, operator: Operator,
                                                             demos: Demos) -> None:
    operator.start()
    demos.apply("named", target={"pod": "basic-tikv-2"})
    assert demos.wait("named")["status"]["target"]["pod"] == "basic-tikv-2"
    demos.apply("seed-a", dryRun=True, target={"seed": 7})
    demos.apply("seed-b", dryRun=True, target={"seed": 7})
    demos.apply("most-leaders", dryRun=True, target={"role": "most-leaders"})
    a, b = demos.wait("seed-a"), demos.wait("seed-b")
    assert a["status"]["target"]["pod"] == b["status"]["target"]["pod"]
    assert "seed 7" in a["status"]["target"]["selection"]
    # Issue 32: the role's target is the store PD said led most, and the status keeps what PD said.
    role = demos.wait("most-leaders")["status"]["target"]
    said = [(sid, int(n)) for sid, n in re.findall(r"store (\d+): (\d+)", role["selection"])]
    assert role["role"] == "most-leaders" and len(said) == 3, role
    assert said[0][0] == role["storeId"] and said[0][1] == max(n for _, n in said), role


def test_dry_run_checks_and_chooses_but_injects_nothing(local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    operator.start()
    before = {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()}
    demos.apply("dry", dryRun=True)
    st = demos.wait("dry")["status"]
    assert st["phase"] == "Succeeded"
    assert demos.condition(demos.get("dry"), "FaultInjected")["reason"] == "DryRun"
    assert "nothing was injected" in st["message"] and st["target"]["pod"] in before
    assert "injectedAt" not in st
    assert {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()} == before


def test_a_degraded_cluster_is_never_injected(local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    operator.start()
    pods = tikv_pods(local_env)
    before = {n: p["metadata"]["uid"] for n, p in pods.items()}
    pd_node = local_env.kubectl_json("get", "pod", "basic-pd-0", "-n", "tidb-cluster")["spec"]["nodeName"]
    node = next(p["spec"]["nodeName"] for _, p in sorted(pods.items()) if p["spec"]["nodeName"] != pd_node)
    local_env.pd(f"/_sim/nodes/{node}/down", "POST")  # the SIMULATED store on it stops heartbeating
    try:
        deadline = time.monotonic() + 10
        while not any(s["store"]["state_name"] == "Disconnected" for s in local_env.pd("/pd/api/v1/stores")["stores"]):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        demos.apply("hurt")
        st = demos.wait("hurt")["status"]
    finally:
        local_env.pd(f"/_sim/nodes/{node}/up", "POST")
    assert st["phase"] == "Aborted"
    pre = demos.condition(demos.get("hurt"), "PreflightPassed")
    assert (pre["status"], pre["reason"]) == ("False", "ClusterUnhealthy")
    assert "refusing to inject" in st["message"] and "Disconnected" in st["message"]
    assert demos.condition(demos.get("hurt"), "FaultInjected")["reason"] == "NotInjected"
    assert {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()} == before
    assert not lease_exists(local_env)
    local_env.wait_healthy(timeout=30)


def test_a_second_demo_on_a_busy_cluster_is_refused_and_the_first_finishes(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    operator.start()
    demos.apply("one", timeouts={"stabilitySeconds": 4})
    demos.wait("one", ("Detecting", "Diagnosing", "Recovering"))
    demos.apply("two")
    two = demos.wait("two")["status"]
    assert two["phase"] == "Aborted" and "ClusterBusy" in two["message"]
    assert f"{demos.ns}/one is already running" in two["message"]
    assert demos.wait("one")["status"]["phase"] == "Succeeded"
    demos.apply("three", dryRun=True)
    assert demos.wait("three")["status"]["phase"] == "Succeeded", "the lease was released"


@pytest.mark.parametrize(
    ("spec", "reason", "words"),
    [
        ({"target": {"pod": "basic-pd-0"}}, "TargetNotTiKV", "is not a TiKV pod of TidbCluster tidb-cluster/basic"),
        ({"cluster": {"name": "missing"}}, "ClusterNotFound", "TidbCluster tidb-cluster/missing does not exist"),
        # tidb-operator's own PD Service passes the Service check (test_pd_service.py); the local tier's operator
        # runs outside the cluster, where its fully qualified name does not resolve.
        ({"cluster": {"name": "basic", "pdURL": "http://basic-pd:2379"}}, "PDUnreachable",
         "PD is not reachable: PD at http://basic-pd.tidb-cluster.svc.cluster.local.:2379 did not answer"),
        # A pdURL outside the namespace (PDURLRefused at run time) never gets this far now: the API server
        # refuses it (test_api_validation.py); the operator's own check is unit-tested (test_config.py).
    ],
)
def test_a_demo_that_cannot_run_ends_aborted_with_the_reason(local_env: LocalEnv, operator: Operator, demos: Demos,
                                                             spec: dict, reason: str, words: str) -> None:
    operator.start()
    before = {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()}
    demos.apply("cannot", **spec)
    st = demos.wait("cannot")["status"]
    assert st["phase"] == "Aborted"
    assert reason in st["message"] and words in st["message"]
    assert {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()} == before
    assert "Aborted" in [e["reason"] for e in demos.events("cannot")]


def test_claude_diagnoses_from_evidence_without_the_answer_or_the_key(
        local_env: LocalEnv, operator: Operator, demos: Demos, fake_claude: str) -> None:
    answer = {"summary": "TiKV pod basic-tikv-1 was deleted and recreated.", "root_cause": "pod deleted",
              "fault_class": "pod-failure", "affected_pod": "basic-tikv-1", "affected_store": "",
              "affected_node": "", "confidence": 0.85, "evidence": ["basic-tikv-1 has a new uid"],
              "cited_evidence": ["V1"],
              "recommended_actions": ["check the audit log"]}
    claude_control(fake_claude, mode="answer", answer=answer, reset=True)
    # Debug logging everywhere (kopf --verbose, the SDK's own debug log): the key must still not show.
    proc = operator.start(verbose=True, ANTHROPIC_API_KEY="sk-ant-local-test-key", ANTHROPIC_BASE_URL=fake_claude,
                          CHAOSDEMO_CLAUDE_MODEL="claude-haiku-5-5", ANTHROPIC_LOG="debug")
    demos.apply("claude", target={"pod": "basic-tikv-1"})
    st = demos.wait("claude")["status"]
    d = st["diagnosis"]
    assert (d["engine"], d["model"], d["fallbackReason"]) == ("claude", "claude-haiku-5-5", "")
    assert d["matchesInjectedFault"] is True and d["summary"] == answer["summary"]
    assert demos.condition(demos.get("claude"), "Diagnosed")["reason"] == "ClaudeDiagnosed"
    sent = claude_control(fake_claude)
    assert len(sent) == 1
    prompt = json.dumps(sent[0]["body"])
    assert "basic-tikv-1" in prompt and "violationTimeline" in prompt
    for leak in ("pod-delete", "sk-ant-local-test-key", "injected"):
        assert leak not in prompt, leak
    everything = json.dumps(demos.get("claude")) + json.dumps(demos.events("claude"))
    assert "sk-ant-local-test-key" not in everything
    log = proc.output()
    assert "claude" in log.lower() and "sk-ant-local-test-key" not in log, "the key is in the operator's log"


def test_a_claude_answer_citing_evidence_that_is_not_there_is_not_trusted(
        local_env: LocalEnv, operator: Operator, demos: Demos, fake_claude: str) -> None:
    answer = {"summary": "TiKV pod basic-tikv-1 was deleted and recreated.", "root_cause": "pod deleted",
              "fault_class": "pod-failure", "affected_pod": "basic-tikv-1", "affected_store": "",
              "affected_node": "", "confidence": 0.9, "evidence": ["an OOM kill on basic-tikv-1"],
              "cited_evidence": ["V1", "E999"], "recommended_actions": []}
    claude_control(fake_claude, mode="answer", answer=answer, reset=True)
    operator.start(ANTHROPIC_API_KEY="sk-ant-local-test-key", ANTHROPIC_BASE_URL=fake_claude)
    demos.apply("invented", target={"pod": "basic-tikv-1"})
    d = demos.wait("invented")["status"]["diagnosis"]
    assert d["engine"] == "claude" and d["citedEvidence"] == ["V1", "E999"]
    assert d["unknownCitations"] == ["E999"], "V1, the detection, is in the evidence; E999 is not"
    assert d["matchesInjectedFault"] is False, "right class and pod, but resting on evidence that is not there"
    assert "E999, not in the evidence: not trusted" in d["grading"]


@pytest.mark.parametrize(("mode", "delay", "reason"), [
    ("429", 0, "ClaudeRateLimited"), ("500", 0, "ClaudeAPIError"), ("timeout", 5, "ClaudeTimeout"),
    ("timeout", 3600, "ClaudeTimeout"), ("malformed", 0, "ClaudeMalformedOutput")],
    ids=["429", "500", "slow-5s", "hangs-an-hour", "malformed"])
def test_when_claude_fails_the_rules_engine_answers_and_says_why(local_env: LocalEnv, operator: Operator,
                                                                 demos: Demos, fake_claude: str, mode: str,
                                                                 delay: float, reason: str) -> None:
    claude_control(fake_claude, mode=mode, delay=delay, reset=True)
    operator.start(ANTHROPIC_API_KEY="sk-ant-local-test-key", ANTHROPIC_BASE_URL=fake_claude,
                   CHAOSDEMO_CLAUDE_TIMEOUT_SECONDS="1", CHAOSDEMO_CLAUDE_MAX_RETRIES="1")
    demos.apply("fallback")
    st = demos.wait("fallback")["status"]
    assert st["phase"] == "Succeeded", "a failed diagnosis never fails the demo"
    d = st["diagnosis"]
    assert d["engine"] == "rules" and d["fallbackReason"].startswith(reason)
    assert d["matchesInjectedFault"] is True


def test_deleting_a_demo_mid_run_lets_go_and_leaves_the_cluster_healthy(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    operator.start()
    demos.apply("gone", timeouts={"stabilitySeconds": 30})
    demos.wait("gone", ("Recovering",))
    local_env.kubectl("delete", "chaosdemo", "gone", "-n", demos.ns, "--timeout=20s")
    assert local_env.kubectl("get", "chaosdemo", "gone", "-n", demos.ns, check=False).returncode != 0
    assert not lease_exists(local_env)
    local_env.wait_healthy(timeout=30)


def test_an_operator_killed_mid_run_resumes_and_never_injects_twice(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    first = operator.start(**NO_LEADER_ELECTION)
    demos.apply("crash", target={"pod": "basic-tikv-1"}, timeouts={"stabilitySeconds": 2})
    demos.wait("crash", ("Detecting", "Diagnosing", "Recovering"))
    first.stop(signal.SIGKILL)
    local_env.wait_healthy(timeout=30)
    replacement = tikv_pods(local_env)["basic-tikv-1"]["metadata"]["uid"]
    operator.start()
    st = demos.wait("crash")["status"]
    assert st["phase"] == "Succeeded", st["message"]
    assert st["detectedBy"] in ("tikv-pods-ready", "tikv-pod-replaced"), "detected, also if the crash hid it"
    assert 0 <= st["detectionSeconds"] < st["recoverySeconds"]
    assert tikv_pods(local_env)["basic-tikv-1"]["metadata"]["uid"] == replacement, "the new pod was not hit again"
    # Events are best effort (a SIGKILL can fall between the status write and the event); never two.
    assert [e["reason"] for e in demos.events("crash")].count("FaultInjected") <= 1
    assert st["injection"]["detail"].startswith("deleted pod basic-tikv-1")


@pytest.mark.parametrize("pod_replaced_since", [False, True])
def test_an_injection_recorded_but_not_done_is_done_exactly_once_on_resume(
        local_env: LocalEnv, operator: Operator, demos: Demos, pod_replaced_since: bool) -> None:
    """The operator died between writing its intent and deleting the pod.

    If the pod was replaced meanwhile (something else deleted it), the uid
    precondition keeps the resumed operator off the replacement.
    """
    operator.stop_shared()  # the intent is written before any operator sees the demo
    pods = tikv_pods(local_env)
    target = pods["basic-tikv-2"]
    if pod_replaced_since:
        local_env.kubectl("delete", "pod", "basic-tikv-2", "-n", "tidb-cluster", "--wait=true")
        local_env.wait_healthy(timeout=60)
    current = tikv_pods(local_env)["basic-tikv-2"]["metadata"]["uid"]
    demos.apply("intent", target={"pod": "basic-tikv-2"})
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    conditions = [{"type": t, "status": "Unknown", "reason": "NotStarted", "message": "", "lastTransitionTime": now,
                   "observedGeneration": 1} for t in ("PreflightPassed", "TargetSelected", "FaultInjected",
                                                      "FailureDetected", "Diagnosed", "Recovered", "Succeeded")]
    status = {"phase": "Injecting", "startedAt": now, "conditions": conditions,
              "target": {"pod": "basic-tikv-2", "podUid": target["metadata"]["uid"],
                         "node": target["spec"]["nodeName"], "storeId": "3",
                         "storeAddress": "basic-tikv-2.basic-tikv-peer.tidb-cluster.svc:20160"},
              "injection": {"action": "pod-delete", "requestedAt": now}}
    local_env.kubectl("patch", "chaosdemo", "intent", "-n", demos.ns, "--subresource=status", "--type=merge",
                      "-p", json.dumps({"status": status}))
    operator.start()
    st = demos.wait("intent")["status"]
    after = tikv_pods(local_env)["basic-tikv-2"]["metadata"]["uid"]
    assert st["phase"] == "Succeeded", st["message"]
    if pod_replaced_since:
        assert "was already gone; nothing deleted again" in st["injection"]["detail"]
        assert after == current, "the replacement pod was not hit"
        assert st["detectedBy"] == "tikv-pod-replaced", "detected from what the fault left on its target"
    else:
        assert st["injection"]["detail"].startswith("deleted pod basic-tikv-2")
        assert after != target["metadata"]["uid"]


def test_the_spec_cannot_change_once_the_demo_exists(local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """Issue 20, finding 9: frozen from creation, not from leaving Pending, and whatever status says (seen to
    fail before: while Pending, or after a status patch back to Pending, dryRun could be flipped to false)."""
    operator.stop_shared()  # Pending, as long as no operator takes it up
    demos.apply("frozen", dryRun=True)
    flip = ("patch", "chaosdemo", "frozen", "-n", demos.ns, "--type=merge", "-p", '{"spec":{"dryRun":false}}')
    out = local_env.kubectl(*flip, check=False)
    assert out.returncode != 0 and "spec cannot change once the ChaosDemo exists" in out.stderr, out.stderr
    operator.start()
    demos.wait("frozen")
    local_env.kubectl("patch", "chaosdemo", "frozen", "-n", demos.ns, "--subresource=status", "--type=merge",
                      "-p", '{"status":{"phase":"Pending"}}')
    out = local_env.kubectl(*flip, check=False)
    assert out.returncode != 0 and "spec cannot change once the ChaosDemo exists" in out.stderr, out.stderr


def test_a_pd_url_outside_the_cluster_is_never_fetched_and_no_foreign_answer_reaches_status(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """The issue's reproduction: a dry run with pdURL at a server listening on the operator's host."""
    import http.server
    import threading

    seen: list[str] = []

    class Foreign(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"<html>FOREIGN-SERVER-PAGE</html>")

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Foreign)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        operator.start()
        out = local_env.kubectl("apply", "-f", "-", check=False, input=yaml.safe_dump(demos.manifest(
            "foreign", cluster={"name": "basic", "pdURL": f"http://127.0.0.1:{server.server_port}"}, dryRun=True)))
    finally:
        server.shutdown()
        server.server_close()
    # Refused by the API server before any operator sees it (issue 20, finding 8); the operator would refuse it
    # again at run time (PDURLRefused, unit-tested in test_config.py).
    assert out.returncode != 0 and "pdURL must name a Service of the target namespace" in out.stderr, out.stderr
    assert seen == [], "nothing fetched from it"


def test_a_demo_in_another_namespace_may_not_target_the_cluster_unless_the_operator_allows_it(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """The issue's reproduction: a ChaosDemo in namespace tenant aimed at tidb-cluster/basic."""
    operator.stop_shared()  # only the operator at its default allow-list may see this demo
    tenant = f"tenant-{uuid.uuid4().hex[:6]}"
    local_env.kubectl("create", "namespace", tenant)
    local_env.kubectl("create", "-f", "-", input=crd_sample(tenant, "from-tenant", "tidb-cluster"))
    operator.start(CHAOSDEMO_TARGET_NAMESPACES="")  # the operator's default: a demo targets its own namespace
    before = {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()}
    deadline = time.monotonic() + 60
    while True:
        st = local_env.kubectl_json("get", "chaosdemo", "from-tenant", "-n", tenant).get("status") or {}
        if st.get("phase") in ("Succeeded", "Failed", "Aborted") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # While the operator still runs: its finalizer comes off (nothing to release where it may not act).
    local_env.kubectl("delete", "chaosdemo", "from-tenant", "-n", tenant, "--timeout=60s")
    local_env.kubectl("delete", "namespace", tenant, "--wait=false")
    assert st.get("phase") == "Aborted" and "NamespaceNotAllowed" in st["message"], st
    assert {n: p["metadata"]["uid"] for n, p in tikv_pods(local_env).items()} == before, "nothing was touched"


def crd_sample(namespace: str, name: str, cluster_namespace: str) -> str:
    return json.dumps({"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
                       "metadata": {"name": name, "namespace": namespace},
                       "spec": {"cluster": {"name": "basic", "namespace": cluster_namespace},
                                "target": {"pod": "basic-tikv-0"}, "canary": {"enabled": False}}})

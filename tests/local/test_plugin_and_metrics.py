"""`kubectl chaosdemo` and the Prometheus endpoint, against real demos on the local tier.

The plugin runs as kubectl runs it (the ``kubectl-chaosdemo`` executable, found
on PATH by ``kubectl chaosdemo``), once with its output recorded and once in a
pseudo-terminal, as a person would see it. The metrics are scraped over HTTP
from the operator process after the demos.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaosdemo_local.cluster.control_plane import free_port
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator, claude_control

pytestmark = pytest.mark.local

BIN = Path(sys.executable).parent


def plugin_env(env: LocalEnv) -> dict[str, str]:
    assert env.cluster is not None
    return {**os.environ, "KUBECONFIG": str(env.kubeconfig),
            "PATH": f"{BIN}:{env.cluster.bin_dir}:{os.environ.get('PATH', '')}", "COLUMNS": "160"}


def kubectl_plugin(env: LocalEnv, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`kubectl chaosdemo ...`: kubectl finds kubectl-chaosdemo on PATH and runs it."""
    assert env.cluster is not None
    return subprocess.run([str(env.cluster.bin_dir / "kubectl"), "chaosdemo", *args], capture_output=True,
                          text=True, env=plugin_env(env), timeout=timeout)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_watch_follows_a_demo_to_its_end_and_list_report_and_metrics_tell_the_same_story(
        local_env: LocalEnv, operator: Operator, demos: Demos, fake_claude: str) -> None:
    port = free_port()
    answer = {"summary": "TiKV pod basic-tikv-1 was deleted.", "root_cause": "pod deleted",
              "fault_class": "pod-failure", "affected_pod": "basic-tikv-1", "affected_store": "",
              "affected_node": "", "confidence": 0.8, "evidence": ["basic-tikv-1 has a new uid"],
              "cited_evidence": ["V1"],
              "recommended_actions": ["check the audit log"]}
    claude_control(fake_claude, mode="answer", answer=answer, reset=True)
    operator.start(CHAOSDEMO_METRICS_PORT=str(port), ANTHROPIC_API_KEY="sk-ant-local-test-key",
                   ANTHROPIC_BASE_URL=fake_claude)
    demos.apply("seen", target={"pod": "basic-tikv-1"}, timeouts={"stabilitySeconds": 2})
    watch = kubectl_plugin(local_env, "watch", "seen", "-n", demos.ns)
    assert watch.returncode == 0, watch.stdout + watch.stderr
    out = watch.stdout
    # The watch starts wherever the demo is by then (a pod-delete is detected in milliseconds):
    # from there on, every stage, in the lifecycle's order.
    order = ["Pending", "Injecting", "Detecting", "Diagnosing", "Recovering", "Succeeded"]
    shown = [stage for stage in order if f"━━ {stage} ━━" in out]
    assert shown == order[order.index(shown[0]):] and "Recovering" in shown, out
    assert sorted(shown, key=out.index) == shown, out
    assert "✗ broken  tikv-pods-ready (basic-tikv-1)" in out, out
    assert "diagnosis by claude" in out and "TiKV pod basic-tikv-1 was deleted." in out
    assert "matches the injected fault: True" in out
    # The summary says, per observer, when after the injection it saw the fault (from status.observers).
    assert "ChaosDemo saw it" in out and "Kubernetes saw it" in out, out

    # An Aborted demo exits non-zero, for scripts.
    demos.apply("nothing", cluster={"name": "no-such-cluster"})
    aborted = kubectl_plugin(local_env, "watch", "nothing", "-n", demos.ns)
    assert aborted.returncode == 1 and "━━ Aborted ━━" in aborted.stdout, aborted.stdout
    assert kubectl_plugin(local_env, "watch", "never-made", "-n", demos.ns).returncode == 3

    listed = kubectl_plugin(local_env, "list", "-n", demos.ns)
    assert listed.returncode == 0
    line = next(row for row in listed.stdout.splitlines() if row.lstrip().startswith("seen "))
    assert "pod-delete" in line and "basic-tikv-1" in line and "Succeeded" in line
    assert "pod-failure matches (claude)" in line
    assert "Aborted" in next(row for row in listed.stdout.splitlines() if row.lstrip().startswith("nothing "))

    md = kubectl_plugin(local_env, "report", "seen", "-n", demos.ns).stdout
    st = demos.get("seen")["status"]
    assert md.startswith(f"# ChaosDemo {demos.ns}/seen: Succeeded")
    assert f"| time to detect | {st['detectionSeconds']} s |" in md
    assert "## Timeline" in md and "fault injected" in md and "| Warning | FaultInjected |" in md
    doc = json.loads(kubectl_plugin(local_env, "report", "seen", "-n", demos.ns, "-o", "json").stdout)
    assert doc["status"]["phase"] == "Succeeded" and "Recovered" in [e["reason"] for e in doc["events"]]

    # For pipelines: JUnit of one demo or of all, and the verdict as the exit code.
    one = kubectl_plugin(local_env, "report", "seen", "-n", demos.ns, "-o", "junit")
    assert one.returncode == 0, one.stderr
    assert [c.get("name") for c in ET.fromstring(one.stdout).iter("testcase")] == [f"{demos.ns}/seen"]
    every = kubectl_plugin(local_env, "report", "-n", demos.ns, "-o", "junit")
    assert every.returncode == 1, "one demo was Aborted: the gate fails"
    suite = ET.fromstring(every.stdout).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("errors")) == ("2", "1"), every.stdout
    assert kubectl_plugin(local_env, "report", "never-made", "-n", demos.ns, "-o", "junit").returncode == 3
    assert kubectl_plugin(local_env, "report", "seen", "nothing", "-n", demos.ns).returncode == 2, "md takes one"

    m = scrape(port)
    assert m[("chaosdemo_demos_total", (("action", "pod-delete"), ("outcome", "Succeeded")))] == 1
    assert m[("chaosdemo_demos_total", (("action", "pod-delete"), ("outcome", "Aborted")))] == 1
    by = st["detectedBy"]
    assert m[("chaosdemo_detection_seconds_count", (("action", "pod-delete"), ("invariant", by)))] == 1
    assert m[("chaosdemo_detection_seconds_sum", (("action", "pod-delete"), ("invariant", by)))] == pytest.approx(
        st["detectionSeconds"], abs=1e-3)
    assert m[("chaosdemo_recovery_seconds_sum", (("action", "pod-delete"),))] == pytest.approx(
        st["recoverySeconds"], abs=1e-3)
    for inv in {v["invariant"] for v in st["violations"]}:
        opened = sum(1 for v in st["violations"] if v["invariant"] == inv)
        assert m[("chaosdemo_invariant_breaches_total", (("invariant", inv),))] == opened
    assert m[("chaosdemo_claude_requests_total", (("result", "ok"),))] == 1
    assert m[("chaosdemo_claude_request_seconds_count", ())] == 1
    assert m[("chaosdemo_claude_tokens_total", (("direction", "input"),))] > 100
    assert m[("chaosdemo_demos_in_flight", ())] == 0
    assert m[("chaosdemo_leader", ())] == 1


def test_a_rules_fallback_is_counted_by_its_reason(local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    port = free_port()
    operator.start(CHAOSDEMO_METRICS_PORT=str(port))  # no API key
    demos.apply("rules")
    assert demos.wait("rules")["status"]["phase"] == "Succeeded"
    m = scrape(port)
    assert m[("chaosdemo_rules_fallbacks_total", (("reason", "NoAPIKey"),))] == 1
    assert ("chaosdemo_claude_requests_total", (("result", "ok"),)) not in m


def test_watch_in_a_terminal_shows_a_live_countdown(local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    """Driven as a person would: a pseudo-terminal, colours, the status line redrawn in place."""
    operator.start()
    demos.apply("live", timeouts={"stabilitySeconds": 4})
    pid, fd = pty.fork()
    if pid == 0:  # the child: kubectl chaosdemo watch, on the terminal
        env = {**plugin_env(local_env), "TERM": "xterm-256color"}
        env.pop("COLUMNS")
        os.execvpe(str(BIN / "kubectl-chaosdemo"), ["kubectl-chaosdemo", "watch", "live", "-n", demos.ns], env)
    screen, deadline = b"", time.monotonic() + 90
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    _, status = os.waitpid(pid, 0)
    text = screen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert "\x1b[" in text, "colours on a terminal"
    assert "recovery deadline in" in text, "the live line counts down to the deadline in force"
    countdowns = {line.split("deadline in")[1][:7] for line in text.split("\r") if "deadline in" in line}
    assert len(countdowns) >= 3, f"redrawn as time passes: {sorted(countdowns)}"
    assert "Succeeded" in text

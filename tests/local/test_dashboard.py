"""The Grafana dashboard the chart ships: every panel's query, evaluated by a real Prometheus (Debian's
``prometheus``) that scraped a real operator through two demos, returns data, and names only metrics and
labels the operator sets. ``.ci/run`` installs Prometheus; a machine without it is told so."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from chaosdemo_local.cluster.control_plane import REPO, free_port
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator, claude_control

pytestmark = pytest.mark.local

DASHBOARD = REPO / "charts" / "chaosdemo-operator" / "dashboards" / "chaosdemo.json"
ANSWER = {"summary": "TiKV pod basic-tikv-1 was deleted.", "root_cause": "pod deleted", "fault_class": "pod-failure",
          "affected_pod": "basic-tikv-1", "affected_store": "", "affected_node": "", "confidence": 0.8,
          "evidence": ["new uid"], "cited_evidence": ["V1"], "recommended_actions": []}


def queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


def test_the_chart_ships_the_dashboard_as_a_configmap_for_grafanas_sidecar_only_when_asked(helm: str) -> None:
    chart = str(REPO / "charts" / "chaosdemo-operator")
    off = subprocess.run([helm, "template", "x", chart, "--kube-version", "1.36.3"], capture_output=True, text=True,
                         check=True).stdout
    assert "grafana_dashboard" not in off, "off by default"
    on = subprocess.run([helm, "template", "x", chart, "--kube-version", "1.36.3", "-n", "monitoring",
                         "--set", "grafana.dashboard.enabled=true"], capture_output=True, text=True, check=True).stdout
    (cm,) = [d for d in yaml.safe_load_all(on)
             if d and d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1" and cm["metadata"]["namespace"] == "monitoring"
    assert json.loads(cm["data"]["chaosdemo.json"]) == json.loads(DASHBOARD.read_text()), "the file, intact"


@pytest.fixture
def prometheus(tmp_path: Path) -> tuple[str, Path]:
    """Where Prometheus will listen, and its config file; the test starts it once the operator's port is known."""
    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus is not installed here (.ci/run installs it: apt-get install prometheus)")
    return f"http://127.0.0.1:{free_port()}", tmp_path / "prometheus.yml"


def start_prometheus(url: str, config: Path, target_port: int) -> subprocess.Popen[bytes]:
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "chaosdemo", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}]}))
    with (config.parent / "prometheus.log").open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([shutil.which("prometheus") or "prometheus", f"--config.file={config}",
                                 f"--storage.tsdb.path={config.parent / 'tsdb'}",
                                 f"--web.listen-address={url.removeprefix('http://')}"],
                                stdout=subprocess.DEVNULL, stderr=log)
    wait_for(lambda: _get(f"{url}/-/ready") is not None, "Prometheus ready", proc=proc, log=config.parent)
    return proc


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read()
            return json.loads(body) if body[:1] in (b"{", b"[") else body
    except OSError:
        return None


def query(url: str, expr: str) -> list[dict[str, Any]]:
    doc = _get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert doc is not None and doc["status"] == "success", (expr, doc)
    return doc["data"]["result"]  # type: ignore[no-any-return]


def wait_for(cond: Any, what: str, timeout: float = 60, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            tail = (log / "prometheus.log").read_text()[-1500:] if log else ""
            raise AssertionError(f"{what}: not within {timeout:.0f}s\n{tail}")
        time.sleep(0.2)


def exposed(port: int) -> dict[str, set[str]]:
    """Each sample name the operator exposes, with the label names it carries."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out


def test_every_panel_returns_data_from_a_real_prometheus_scraping_the_operator_through_two_demos(
        local_env: LocalEnv, operator: Operator, demos: Demos, fake_claude: str,
        prometheus: tuple[str, Path]) -> None:
    url, config = prometheus
    port = free_port()
    operator.start(CHAOSDEMO_METRICS_PORT=str(port), ANTHROPIC_API_KEY="sk-ant-local-test-key",
                   ANTHROPIC_BASE_URL=fake_claude, CHAOSDEMO_CLAUDE_MAX_RETRIES="0")
    wait_for(lambda: _get(f"http://127.0.0.1:{port}/metrics") is not None, "the operator's /metrics")
    proc = start_prometheus(url, config, port)
    try:
        claude_control(fake_claude, mode="answer", answer=ANSWER, reset=True)  # Claude answers the first
        canary = {"enabled": True, "baselineSeconds": 3}  # the canary's panels read both demos' statements
        demos.apply("answered", target={"pod": "basic-tikv-1"}, timeouts={"stabilitySeconds": 1}, canary=canary)
        assert demos.wait("answered")["status"]["diagnosis"]["engine"] == "claude"
        claude_control(fake_claude, mode="500")  # and fails the second: the rules engine stands in
        demos.apply("fallback", target={"pod": "basic-tikv-2"}, timeouts={"stabilitySeconds": 1}, canary=canary)
        assert demos.wait("fallback")["status"]["diagnosis"]["engine"] == "rules"
        wait_for(lambda: [float(r["value"][1]) for r in query(url, "sum(chaosdemo_demos_total)")] == [2.0],
                 "Prometheus scraped both demos' end")
        names = exposed(port)
        for expr in queries():
            for metric in re.findall(r"\bchaosdemo_[a-z_]+", expr):
                assert metric in names, f"{expr}: the operator sets no {metric} (it sets {sorted(names)})"
                for by in re.findall(r"by \(([^)]*)\)", expr):
                    labels = {lb.strip() for lb in by.split(",")} - {"le"}
                    assert labels <= names[metric], f"{expr}: {metric} has no label {labels - names[metric]}"
            result = query(url, expr)
            values = [r["value"][1] for r in result]
            assert values and all(v not in ("NaN", "+Inf", "-Inf") for v in values), f"{expr}: no data ({result})"
    finally:
        proc.terminate()
        proc.wait(timeout=30)

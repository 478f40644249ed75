"""``make demo``: the whole ChaosDemo story on the local tier, narrated.

Starts a real control plane (built from Go modules) with SIMULATED kubelets
(kwok), a SIMULATED TiDB cluster (tidb-operator's objects, PD and TiKV stores
from ``pd_sim``), runs the operator, applies ``deploy/samples/chaosdemo.yaml``,
relays ``kubectl get chaosdemos -w`` as a user would see it, shows the
diagnosis, and tears everything down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chaosdemo_local.controlplane import REPO
from chaosdemo_local.env import LocalEnv
from chaosdemo_local.reaper import stop_on_signals

__all__ = ["run_demo", "run_up"]

console = Console(width=None if os.isatty(1) else 140)
TERMINAL = ("Succeeded", "Failed", "Aborted")
SAMPLES = {"pod-delete": "chaosdemo.yaml", "pod-kill": "pod-kill.yaml", "node-kill": "node-kill.yaml"}


def _step(text: str) -> None:
    console.print(f"[bold cyan]==>[/] {text}")


def _start(time_scale: float) -> tuple[LocalEnv, float]:
    workdir = Path(tempfile.mkdtemp(prefix="chaosdemo-local-"))
    env = LocalEnv(workdir, time_scale=time_scale)
    t0 = time.monotonic()
    _step("building or reusing the control plane (etcd, kube-apiserver, kube-controller-manager, "
          "kube-scheduler, kubectl, kwok from Go modules)")
    env.start()
    return env, time.monotonic() - t0


def _operator_env() -> dict[str, str]:
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    extra = {"ANTHROPIC_API_KEY": key}
    if os.environ.get("ANTHROPIC_BASE_URL"):
        extra["ANTHROPIC_BASE_URL"] = os.environ["ANTHROPIC_BASE_URL"]
    return extra


def run_demo(action: str = "pod-delete", time_scale: float = 0.25, keep: bool = False) -> int:
    stop_on_signals()
    console.print(Panel.fit(
        "[bold]ChaosDemo on the local tier[/]\n"
        "Real: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, the operator.\n"
        "[yellow]SIMULATED[/]: kubelets (kwok), tidb-operator's objects, PD and its TiKV stores "
        f"(PD/TiKV times x{time_scale}).", border_style="cyan"))
    key = bool(os.environ.get("ANTHROPIC_API_KEY"))
    _step("diagnosis engine: " + ("Claude (ANTHROPIC_API_KEY is set)" if key else
                                  "rules engine (ANTHROPIC_API_KEY is not set)"))
    env, took = _start(time_scale)
    code = 1
    try:
        _step(f"environment ready in {took:.1f}s: {env.healthy()[1]} (SIMULATED PD at {env.pd_url})")
        console.print(env.kubectl("get", "tidbclusters,statefulsets,pods", "-n", "tidb-cluster", "-o", "wide").stdout,
                      markup=False, highlight=False, soft_wrap=True)
        _step("starting the operator: chaosdemo run")
        operator = env.start_operator(**_operator_env())
        deadline = time.monotonic() + 30
        while "ChaosDemo operator ready" not in operator.output():
            if operator.popen.poll() is not None or time.monotonic() > deadline:
                console.print(operator.output()[-3000:])
                raise RuntimeError("the operator did not start")
            time.sleep(0.2)
        sample = REPO / "deploy" / "samples" / SAMPLES[action]
        manifest = yaml.safe_load(sample.read_text())
        name = manifest["metadata"]["name"]
        _step(f"kubectl apply -f {sample.relative_to(REPO)}")
        console.print(env.kubectl("apply", "-f", str(sample)).stdout.strip())
        _step("kubectl get chaosdemos -n tidb-cluster -w")
        code = _follow(env, name)
        _report(env, name)
        if keep:
            console.print(f"\nLeft running. KUBECONFIG={env.kubeconfig}; logs in {env.workdir / 'logs'}")
            input("Press Enter to tear down... ")
    finally:
        _step("tearing down (every process this demo started)")
        env.stop()
        if not keep:
            shutil.rmtree(env.workdir, ignore_errors=True)
    return code


def _follow(env: LocalEnv, name: str, timeout: float = 900) -> int:
    assert env.cluster is not None
    watch = subprocess.Popen(
        [str(env.cluster.bin_dir / "kubectl"), "--kubeconfig", str(env.kubeconfig), "get", "chaosdemos",
         "-n", "tidb-cluster", "-w"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    phase = ""
    deadline = time.monotonic() + timeout
    assert watch.stdout is not None
    try:
        for line in watch.stdout:
            console.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)
            if any(f" {p} " in f" {line} " for p in TERMINAL):
                phase = next(p for p in TERMINAL if f" {p} " in f" {line} ")
                break
            if time.monotonic() > deadline:
                break
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        watch.stdout.close()
    return 0 if phase == "Succeeded" else 1


def _report(env: LocalEnv, name: str) -> None:
    obj = env.kubectl_json("get", "chaosdemo", name, "-n", "tidb-cluster")
    st = obj.get("status") or {}
    table = Table(title=f"ChaosDemo {name}: {st.get('phase')}", show_header=False)
    for label, key in (("target", None), ("detected by", "detectedBy"), ("time to detect (s)", "detectionSeconds"),
                       ("time to recover (s)", "recoverySeconds"), ("message", "message")):
        value = st.get(key) if key else (st.get("target") or {}).get("pod", "")
        table.add_row(label, Text(str(value)))
    console.print(table)
    d = st.get("diagnosis")
    if d:
        d = {k: escape(v) if isinstance(v, str) else [escape(x) for x in v] if isinstance(v, list) else v
             for k, v in d.items()}  # text from Claude or the cluster is shown, never interpreted
        body = (f"[bold]{d['summary']}[/]\n\nroot cause: {d['rootCause']}\nfault class: {d['faultClass']}   "
                f"pod: {d['affectedPod']}   store: {d['affectedStore']}   node: {d['affectedNode']}   "
                f"confidence: {d['confidence']}\n\nevidence:\n" + "\n".join(f"  - {e}" for e in d["evidence"])
                + "\n\nrecommended:\n" + "\n".join(f"  - {a}" for a in d["recommendedActions"])
                + f"\n\n[{'green' if d['matchesInjectedFault'] else 'red'}]matches the injected fault: "
                  f"{d['matchesInjectedFault']}[/] ({d['grading']})")
        engine = f"{d['engine']}" + (f" ({d['model']})" if d.get("model") else "") + \
                 (f" - rules engine because {d['fallbackReason']}" if d.get("fallbackReason") else "")
        console.print(Panel(body, title=f"diagnosis by {escape(engine)}", border_style="magenta"))
    events = env.kubectl("describe", "chaosdemo", name, "-n", "tidb-cluster").stdout.split("Events:")[-1]
    console.print(Panel(Text(events.strip()), title=f"kubectl describe chaosdemo {name}: events", border_style="blue"))


def run_up(time_scale: float = 1.0) -> int:
    stop_on_signals()
    env, took = _start(time_scale)
    try:
        env.start_operator(**_operator_env())
        console.print(Panel.fit(
            f"Local tier up in {took:.1f}s (SIMULATED kubelets, TiDB objects and PD).\n"
            f"  export KUBECONFIG={env.kubeconfig}\n"
            f"  kubectl apply -f deploy/samples/chaosdemo.yaml\n  kubectl get chaosdemos -n tidb-cluster -w\n"
            f"Operator log: {env.workdir / 'logs'}\nCtrl-C stops everything."))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        env.stop()

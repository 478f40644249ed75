"""``make demo``: the whole ChaosDemo story on the local tier, narrated.

Starts a real control plane (built from Go modules) with SIMULATED kubelets
(kwok), a SIMULATED TiDB cluster (tidb-operator's objects, PD and TiKV stores
from ``pd_sim``), runs the operator, applies ``deploy/samples/chaosdemo.yaml``,
follows it with ``kubectl chaosdemo watch`` as a user would (stages, the
deadline in force, invariants, the diagnosis), and tears everything down.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from chaosdemo_local.cluster.control_plane import REPO
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.reaper import stop_on_signals

__all__ = ["run_demo", "run_up"]

console = Console(width=None if os.isatty(1) else 140)
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
        _step(f"kubectl chaosdemo watch {name} -n tidb-cluster   (the plugin; kubectl get chaosdemos -w shows the same"
              " in one line)")
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
    """`kubectl chaosdemo watch`: stages, the deadline in force, invariants as they break and hold, the diagnosis."""
    from chaosdemo.plugin.cli import connect, follow

    api, _ = connect(str(env.kubeconfig), None)
    try:
        return follow(api, "tidb-cluster", name, console, timeout)
    finally:
        api.close()


def _report(env: LocalEnv, name: str) -> None:
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

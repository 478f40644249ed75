"""Fixtures of the local tier: a real control plane (built from Go modules, kwok for the
kubelets), the SIMULATED tidb-operator objects and PD, the local Anthropic stand-in, and
the operator as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosdemo_local.controlplane import free_port
from chaosdemo_local.docker_nodes import docker_cli
from chaosdemo_local.env import LocalEnv, Process

TIME_SCALE = 0.1
TERMINAL = ("Succeeded", "Failed", "Aborted")


@pytest.fixture(scope="session")
def local_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnv]:
    env = LocalEnv(tmp_path_factory.mktemp("local-tier"), time_scale=TIME_SCALE)
    try:
        env.start()
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def fake_claude(local_env: LocalEnv) -> Iterator[str]:
    port = free_port()
    proc = local_env.spawn("fake-claude", [sys.executable, "-m", "chaosdemo_local.cli", "fake-claude",
                                           "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url + "/_requests", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or proc.popen.poll() is not None:
                raise RuntimeError(f"fake Claude did not start: {proc.output()}") from None
            time.sleep(0.1)
    yield url


def claude_control(url: str, **body: Any) -> list[dict[str, Any]]:
    req = urllib.request.Request(url + "/_control", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()
    with urllib.request.urlopen(url + "/_requests", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


class Operator:
    """Starts the operator as a process, as `chaosdemo run` runs it."""

    def __init__(self, env: LocalEnv) -> None:
        self.env = env
        self.processes: list[Process] = []

    def start(self, args: tuple[str, ...] = (), **settings: str) -> Process:
        proc = self.env.start_operator(name=f"operator-{uuid.uuid4().hex[:6]}", args=args, **settings)
        self.processes.append(proc)
        deadline = time.monotonic() + 30
        while "ChaosDemo operator ready" not in proc.output():
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not start:\n{proc.output()[-3000:]}")
            time.sleep(0.1)
        return proc

    def stop_all(self) -> None:
        for p in self.processes:
            p.stop()


@pytest.fixture
def operator(local_env: LocalEnv) -> Iterator[Operator]:
    local_env.wait_healthy(timeout=60)
    op = Operator(local_env)
    yield op
    op.stop_all()


class Demos:
    """ChaosDemos of one test, in a namespace of its own, against tidb-cluster/basic."""

    def __init__(self, env: LocalEnv, namespace: str) -> None:
        self.env, self.ns = env, namespace

    def manifest(self, name: str, **spec: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"cluster": {"name": "basic", "namespace": "tidb-cluster"},
                                "timeouts": {"detectionSeconds": 30, "recoverySeconds": 60, "stabilitySeconds": 1}}
        for key, value in spec.items():
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**body[key], **value}
            else:
                body[key] = value
        return {"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
                "metadata": {"name": name, "namespace": self.ns}, "spec": body}

    def apply(self, name: str, **spec: Any) -> subprocess.CompletedProcess[str]:
        return self.env.kubectl("apply", "-f", "-", input=yaml.safe_dump(self.manifest(name, **spec)))

    def get(self, name: str) -> dict[str, Any]:
        return self.env.kubectl_json("get", "chaosdemo", name, "-n", self.ns)  # type: ignore[no-any-return]

    def wait(self, name: str, phases: tuple[str, ...] = TERMINAL, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        obj: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = self.get(name)
            if (obj.get("status") or {}).get("phase") in phases:
                return obj
            time.sleep(0.1)
        raise TimeoutError(f"{name} not in {phases} after {timeout}s: {json.dumps(obj.get('status'), indent=1)}")

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.env.kubectl_json("get", "events", "-n", self.ns,
                                      "--field-selector", f"involvedObject.name={name}")["items"]
        return sorted(items, key=lambda e: e.get("lastTimestamp") or "")

    def condition(self, obj: dict[str, Any], type_: str) -> dict[str, Any]:
        return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


@pytest.fixture
def demos(local_env: LocalEnv, request: pytest.FixtureRequest) -> Iterator[Demos]:
    ns = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + uuid.uuid4().hex[:4]
    ns = "".join(ch for ch in ns if ch.isalnum() or ch == "-").strip("-")
    local_env.kubectl("create", "namespace", ns)
    yield Demos(local_env, ns)
    local_env.kubectl("delete", "chaosdemos", "--all", "-n", ns, "--wait=true", "--timeout=30s", check=False)
    local_env.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def tikv_pods(env: LocalEnv) -> dict[str, dict[str, Any]]:
    items = env.kubectl_json("get", "pods", "-n", "tidb-cluster", "-l", "app.kubernetes.io/component=tikv")["items"]
    return {p["metadata"]["name"]: p for p in items}


def watch_phases(env: LocalEnv, ns: str, name: str) -> subprocess.Popen[str]:
    """`kubectl get chaosdemo -w`, printing the phase of every change the API server sends."""
    assert env.cluster is not None
    return subprocess.Popen(
        [str(env.cluster.bin_dir / "kubectl"), "--kubeconfig", str(env.kubeconfig), "get", "chaosdemo", name,
         "-n", ns, "-w", "-o", "jsonpath={.status.phase}{'\\n'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def lease_exists(env: LocalEnv) -> bool:
    return env.kubectl("get", "lease", "chaosdemo-basic", "-n", "tidb-cluster", check=False).returncode == 0


@pytest.fixture
def docker_host(local_env: LocalEnv) -> str:
    if not local_env.docker_host:
        pytest.skip(f"no Docker engine in the local tier: {local_env.docker_error}")
    return local_env.docker_host


def running(host: str, name: str) -> bool:
    out = docker_cli(host, "inspect", "-f", "{{.State.Running}}", name, check=False)
    return out.stdout.decode().strip() == "true"


def target_away_from_pd(env: LocalEnv) -> str:
    pd_node = env.kubectl_json("get", "pod", "basic-pd-0", "-n", "tidb-cluster")["spec"]["nodeName"]
    return next(n for n, p in sorted(tikv_pods(env).items()) if p["spec"]["nodeName"] != pd_node)


def node_kill(env: LocalEnv, demos: Demos, name: str, down: int, **spec: object) -> str:
    """Apply a node-kill demo on a TiKV pod whose node does not also host PD; return that node."""
    pod = target_away_from_pd(env)
    demos.apply(name, fault={"action": "node-kill", "nodeDownSeconds": down}, target={"pod": pod}, **spec)
    return str(tikv_pods(env)[pod]["spec"]["nodeName"])


def read_phases(proc: subprocess.Popen[str], timeout: float = 60) -> list[str]:
    """The phases seen, with repeats folded, up to the first terminal one."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        phase = line.strip() or "(none)"
        if not seen or seen[-1] != phase:
            seen.append(phase)
        if phase in TERMINAL or time.monotonic() > deadline:
            break
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()
    return seen


REPO = Path(__file__).resolve().parents[2]


def operator_deletions(env: LocalEnv, since: str) -> list[str]:
    """TiKV pods the operators deleted since ``since``, from the API server's audit log."""
    assert env.cluster is not None
    return [d["name"] for d in env.cluster.operator_deletions("tidb-cluster", "basic-tikv-") if d["at"] >= since]


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())

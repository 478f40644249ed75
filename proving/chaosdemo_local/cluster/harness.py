"""The local tier's test harness: the operator as a real process (one shared across tests, or a test's own),
a test's ChaosDemos in a namespace of their own, a watch of one demo's phases, and the small reads the tests
share. No pytest here: ``tests/local/conftest.py`` makes fixtures of it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Collection
from typing import Any

import yaml

from chaosdemo.api.conditions import TERMINAL
from chaosdemo_local.cluster.control_plane import ControlPlaneError, free_port
from chaosdemo_local.cluster.docker_nodes import docker_cli
from chaosdemo_local.cluster.env import LocalEnv, Process
from chaosdemo_local.cluster.tikv import pod_away_from_pd, tikv_pods

__all__ = [
    "NO_LEADER_ELECTION",
    "Demos",
    "Operator",
    "PhaseWatch",
    "SharedOperator",
    "api",
    "claude_control",
    "launch_operator",
    "lease_exists",
    "node_kill",
    "now_iso",
    "operator_deletions",
    "running",
    "start_fake_claude",
]


def start_fake_claude(env: LocalEnv) -> str:
    """The local Anthropic-compatible STAND-IN as a process of the tier, once it answers (at most 20 s): its URL."""
    port = free_port()
    proc = env.spawn("fake-claude", [sys.executable, "-m", "chaosdemo_local.cli", "fake-claude", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url + "/_requests", timeout=1):
                return url
        except OSError:
            if time.monotonic() > deadline or proc.popen.poll() is not None:
                raise RuntimeError(f"fake Claude did not start: {proc.output()}") from None
            time.sleep(0.1)


def claude_control(url: str, **body: Any) -> list[dict[str, Any]]:
    req = urllib.request.Request(url + "/_control", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()
    with urllib.request.urlopen(url + "/_requests", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


# For an operator the test SIGKILLs while it leads: without leader election it never holds the leader
# Lease, so its successor takes over at once instead of waiting the Lease out (test_replicas proves the
# takeover itself, with two replicas).
NO_LEADER_ELECTION = {"CHAOSDEMO_LEADER_ELECTION": "false"}


def launch_operator(env: LocalEnv, name: str, args: tuple[str, ...] = (), verbose: bool = False,
                    **settings: str) -> Process:
    """``chaosdemo run`` as a process, once it says it is ready (at most 30 s)."""
    proc = env.start_operator(name=name, args=args, verbose=verbose, **settings)
    deadline = time.monotonic() + 30
    while "ChaosDemo operator ready" not in proc.output():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"operator did not start:\n{proc.output()[-3000:]}")
        time.sleep(0.05)
    return proc


class SharedOperator:
    """The session's operator with the tests' default settings: started when a test first asks for it and
    kept across tests, as a deployed operator outlives the demos it runs (each test's demos are in a
    namespace of their own). Stopped whenever a test needs an operator of its own, so that only one
    ever acts; started again by the next test that asks.

    It reaches the SIMULATED PD at ``pd_url`` (in the tests, a pass-through that a test can make misbehave).
    """

    def __init__(self, env: LocalEnv, pd_url: str) -> None:
        self.env, self.pd_url, self.starts = env, pd_url, 0
        self.proc: Process | None = None

    def get(self) -> Process:
        if self.proc is None or self.proc.popen.poll() is not None:
            self.starts += 1
            self.proc = launch_operator(self.env, f"operator-shared-{self.starts}",
                                        CHAOSDEMO_PD_URL_TEMPLATE=self.pd_url)
        return self.proc

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


class Operator:
    """The operator of one test, a real process as `chaosdemo run` runs it.

    ``start()`` with nothing to set gives the session's shared operator;
    with settings, arguments or ``own=True``, a process of this test's own,
    after the shared one has stopped. Its log is at INFO, as the chart runs
    it, unless ``verbose``.
    """

    def __init__(self, env: LocalEnv, shared: SharedOperator) -> None:
        self.env, self.shared = env, shared
        self.processes: list[Process] = []

    def start(self, args: tuple[str, ...] = (), own: bool = False, verbose: bool = False, **settings: str) -> Process:
        if not (args or own or verbose or settings):
            return self.shared.get()
        self.shared.stop()
        proc = launch_operator(self.env, f"operator-{uuid.uuid4().hex[:6]}", args, verbose, **settings)
        self.processes.append(proc)
        return proc

    def stop_shared(self) -> None:
        """No operator runs until this test's next ``start()`` (the shared one may be up from an earlier test)."""
        self.shared.stop()

    def stop_all(self) -> None:
        for p in self.processes:
            p.stop()


class Demos:
    """ChaosDemos of one test, in a namespace of its own, against tidb-cluster/basic."""

    def __init__(self, env: LocalEnv, namespace: str) -> None:
        self.env, self.ns = env, namespace

    def manifest(self, name: str, **spec: Any) -> dict[str, Any]:
        # The SQL canary (on by default) is off here unless a test asks for it: its baseline would add 10 s to
        # every demo of the tier; tests/local/test_canary.py and the kind tier run it.
        body: dict[str, Any] = {"cluster": {"name": "basic", "namespace": "tidb-cluster"},
                                "timeouts": {"detectionSeconds": 30, "recoverySeconds": 60, "stabilitySeconds": 1},
                                "canary": {"enabled": False}}
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
        return api(self.env, f"/apis/chaosdemo.dev/v1alpha1/namespaces/{self.ns}/chaosdemos/{name}")

    def wait(self, name: str, phases: Collection[str] = TERMINAL, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        obj: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = self.get(name)
            if (obj.get("status") or {}).get("phase") in phases:
                return obj
            time.sleep(0.1)
        raise TimeoutError(f"{name} not in {phases} after {timeout}s: {json.dumps(obj.get('status'), indent=1)}")

    def events(self, name: str) -> list[dict[str, Any]]:
        items = api(self.env, f"/api/v1/namespaces/{self.ns}/events?fieldSelector=involvedObject.name%3D{name}")
        return sorted(items["items"], key=lambda e: e.get("lastTimestamp") or "")

    def condition(self, obj: dict[str, Any], type_: str) -> dict[str, Any]:
        return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def api(env: LocalEnv, path: str) -> dict[str, Any]:
    """A read from the API server without a kubectl process: the tests poll, and each kubectl costs a
    process start on the same 2 cores as the system under test."""
    assert env.cluster is not None
    return env.cluster.api(path)


class PhaseWatch:
    """The phases of one ChaosDemo, every change as the API server sends it, from before it exists.

    The watch (``kubectl get --raw`` of the watch URL) starts at the
    resourceVersion of a list taken when this is made, so make it before the
    ``kubectl apply``: no change after that list can be missed, however late
    the watch's connection opens.
    """

    def __init__(self, env: LocalEnv, ns: str, name: str, timeout: float = 120) -> None:
        assert env.cluster is not None
        path = f"/apis/chaosdemo.dev/v1alpha1/namespaces/{ns}/chaosdemos?fieldSelector=metadata.name%3D{name}"
        rv = api(env, path)["metadata"]["resourceVersion"]
        self.name = name
        self.proc = subprocess.Popen(
            [str(env.cluster.bin_dir / "kubectl"), "--kubeconfig", str(env.kubeconfig), "get", "--raw",
             f"{path}&watch=1&resourceVersion={rv}&timeoutSeconds={int(timeout)}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def phases(self, timeout: float = 60) -> list[str]:
        """The phases seen, with repeats folded, up to the first terminal one; TimeoutError at the deadline."""
        seen: list[str] = []
        deadline, buffered = time.monotonic() + timeout, b""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        try:
            while not seen or seen[-1] not in TERMINAL:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise TimeoutError(f"{self.name}: no terminal phase after {timeout}s; seen {seen}")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"{self.name}: the watch ended before a terminal phase; seen {seen}")
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    phase = ((event.get("object") or {}).get("status") or {}).get("phase") or "(none)"
                    if not seen or seen[-1] != phase:
                        seen.append(phase)
                    if phase in TERMINAL:
                        break
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
        return seen


def lease_exists(env: LocalEnv) -> bool:
    try:
        api(env, "/apis/coordination.k8s.io/v1/namespaces/tidb-cluster/leases/chaosdemo-basic")
    except ControlPlaneError as e:
        if "HTTP 404" in str(e):
            return False
        raise
    return True


def running(host: str, name: str) -> bool:
    out = docker_cli(host, "inspect", "-f", "{{.State.Running}}", name, check=False)
    return out.stdout.decode().strip() == "true"


def node_kill(env: LocalEnv, demos: Demos, name: str, down: int, **spec: object) -> str:
    """Apply a node-kill demo on a TiKV pod whose node does not also host PD; return that node."""
    pod = pod_away_from_pd(env)
    demos.apply(name, fault={"action": "node-kill", "nodeDownSeconds": down}, target={"pod": pod}, **spec)
    return str(tikv_pods(env)[pod]["spec"]["nodeName"])


def operator_deletions(env: LocalEnv, since: str) -> list[str]:
    """TiKV pods the operators deleted since ``since``, from the API server's audit log."""
    assert env.cluster is not None
    return [d["name"] for d in env.cluster.operator_deletions("tidb-cluster", "basic-tikv-") if d["at"] >= since]


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())

"""Fixtures of the local tier: a real control plane (built from Go modules, kwok for the
kubelets), the SIMULATED tidb-operator objects and PD, the local Anthropic stand-in, and
the operator as a real process."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosdemo.api.conditions import TERMINAL
from chaosdemo_local.cluster.control_plane import ControlPlaneError, free_port
from chaosdemo_local.cluster.docker_nodes import docker_cli
from chaosdemo_local.cluster.env import LocalEnv, Process
from chaosdemo_local.cluster.leftovers import (
    Reader,
    TierState,
    describe,
    going_namespaces,
    read_tier,
    remove,
    wait_clean,
)
from chaosdemo_local.cluster.tikv import pod_away_from_pd, tikv_pods
from chaosdemo_local.reaper import stop_on_signals

from .misbehaving_pd import MisbehavingPD

TIME_SCALE = 0.1


def pytest_sessionstart(session: pytest.Session) -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C does, and Ctrl-C works where a shell started the run in the
    background (SIGINT ignored): every way out runs the teardown, and the tier's checks, instead of dying."""
    stop_on_signals()


@pytest.fixture(scope="session")
def local_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnv]:
    env = LocalEnv(tmp_path_factory.mktemp("local-tier"), time_scale=TIME_SCALE)
    try:
        env.start()
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def claude_server(local_env: LocalEnv) -> Iterator[str]:
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


@pytest.fixture
def fake_claude(claude_server: str) -> Iterator[str]:
    """The Anthropic stand-in for one test: what the test told it to do is undone after it."""
    yield claude_server
    claude_control(claude_server, mode="answer", answer=None, delay=0, reset=True)


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

    It reaches the SIMULATED PD through ``front``, a pass-through that a test can make misbehave.
    """

    def __init__(self, env: LocalEnv, front: MisbehavingPD) -> None:
        self.env, self.front, self.proc, self.starts = env, front, None, 0

    def get(self) -> Process:
        if self.proc is None or self.proc.popen.poll() is not None:
            self.starts += 1
            self.proc = launch_operator(self.env, f"operator-shared-{self.starts}",
                                        CHAOSDEMO_PD_URL_TEMPLATE=self.front.url)
        return self.proc

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


@pytest.fixture(scope="session")
def pd_front(local_env: LocalEnv) -> Iterator[MisbehavingPD]:
    """The shared operator's way to PD: passes everything through, unless a test sets its ``mode``."""
    with MisbehavingPD(local_env.pd_url) as front:
        yield front


_SHARED: list[SharedOperator] = []  # the session's, once made: for tests that must run without it


@pytest.fixture(scope="session")
def shared_operator(local_env: LocalEnv, pd_front: MisbehavingPD) -> Iterator[SharedOperator]:
    shared = SharedOperator(local_env, pd_front)
    _SHARED.append(shared)
    yield shared
    shared.stop()
    _SHARED.clear()


@pytest.fixture(autouse=True)
def _no_operator_unless_asked(request: pytest.FixtureRequest) -> None:
    """A test that does not ask for an operator runs without one: a ChaosDemo it creates is not acted on."""
    if "operator" not in request.fixturenames:
        for shared in _SHARED:
            shared.stop()


def _shared_pids() -> set[int]:
    return {sh.proc.popen.pid for sh in _SHARED if sh.proc is not None and sh.proc.popen.poll() is None}


# Set while a test runs: what the tier looked like before it, and how long each operator log was then.
_BEFORE = pytest.StashKey[tuple[LocalEnv, TierState, dict[Path, int]]]()
LEFTOVER_DEADLINE = 60  # seconds: a finalizer handled, a namespace deleted, a cluster healthy again


def _operator_logs(env: LocalEnv) -> dict[Path, int]:
    return {log: log.stat().st_size for log in (env.workdir / "logs").glob("operator*.log")}


# Namespaces a test made that were being deleted when it ended: name -> (who made it, when it ended).
_GOING: dict[str, tuple[str, float]] = {}


def _namespaces_gone(state: TierState) -> list[str]:
    """The namespaces of earlier tests still there past the deadline, as lines (those gone are forgotten)."""
    for ns in [ns for ns in _GOING if ns not in state.namespaces]:
        del _GOING[ns]
    now = time.monotonic()
    return [f"namespace {ns}, made by {who}, still there {now - ended:.0f} s after it ended"
            for ns, (who, ended) in sorted(_GOING.items()) if now - ended > LEFTOVER_DEADLINE]


@pytest.fixture(scope="session")
def tier_reader(local_env: LocalEnv) -> Iterator[Reader]:
    reader = Reader(local_env)
    yield reader
    deadline = time.monotonic() + LEFTOVER_DEADLINE
    while _GOING and time.monotonic() < deadline:
        _namespaces_gone(read_tier(local_env, reader, health=False))
        time.sleep(0.25)
    reader.close()
    assert not _GOING, f"namespaces of the session's tests still there at its end: {sorted(_GOING)}"


def _check_leftovers(env: LocalEnv, reader: Reader, before: TierState, who: str) -> None:
    left, after = wait_clean(lambda: read_tier(env, reader), before, _shared_pids, LEFTOVER_DEADLINE)
    late = _namespaces_gone(after)
    for ns in going_namespaces(before, after):
        _GOING.setdefault(ns, (who, time.monotonic()))
    if left or late:
        remove(env, before, after, _shared_pids())
        pytest.fail(f"after {who}, the tier still holds, {LEFTOVER_DEADLINE} s after its teardown (now removed):"
                    "\n  " + "\n  ".join(left + late), pytrace=False)


@pytest.fixture(autouse=True)
def _leaves_the_tier_as_it_found_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of the tier leaves it as it found it, or fails naming what is left (and it is removed).

    Autouse, so set up before the test's other fixtures and torn down after them: what their
    teardowns leave counts too.
    """
    if "local_env" not in request.fixturenames:
        yield
        return
    env: LocalEnv = request.getfixturevalue("local_env")
    reader: Reader = request.getfixturevalue("tier_reader")
    before = read_tier(env, reader)
    request.node.stash[_BEFORE] = (env, before, _operator_logs(env))
    yield
    _check_leftovers(env, reader, before, request.node.nodeid)


@pytest.fixture(scope="module", autouse=True)
def _module_leaves_the_tier_as_it_found_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """The same for what a module's own fixtures share among its tests (namespaces, RBAC, an installed chart)."""
    mine = [item for item in request.session.items if item.module is request.module]
    if not any("local_env" in getattr(item, "fixturenames", ()) for item in mine):
        yield
        return
    env: LocalEnv = request.getfixturevalue("local_env")
    reader: Reader = request.getfixturevalue("tier_reader")
    before = read_tier(env, reader)
    yield
    _check_leftovers(env, reader, before, f"the fixtures of {request.module.__name__}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test of the tier says why without a rerun: its operators' log and what the tier holds."""
    report = yield
    if report.failed and _BEFORE in item.stash:
        env, _, logs = item.stash[_BEFORE]
        for log, size in sorted(_operator_logs(env).items()):
            if size > logs.get(log, 0):
                with open(log, "rb") as fh:
                    fh.seek(logs.get(log, 0))
                    lines = fh.read().decode(errors="replace").splitlines()
                report.sections.append((f"{log.stem} during the test (last {min(len(lines), 120)} lines)",
                                        "\n".join(lines[-120:])))
        try:
            report.sections.append(("the tier now", describe(read_tier(env))))
        except Exception as e:  # noqa: BLE001 - a report must not hide the failure it reports
            report.sections.append(("the tier now", f"could not be read: {e!r}"))
    return report  # type: ignore[no-any-return]


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


@pytest.fixture
def operator(local_env: LocalEnv, shared_operator: SharedOperator) -> Iterator[Operator]:
    shared_operator.front.mode = "ok"
    local_env.wait_healthy(timeout=60)
    op = Operator(local_env, shared_operator)
    yield op
    op.stop_all()
    shared_operator.front.mode = "ok"


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


@pytest.fixture
def demos(local_env: LocalEnv, request: pytest.FixtureRequest) -> Iterator[Demos]:
    ns = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + uuid.uuid4().hex[:4]
    ns = "".join(ch for ch in ns if ch.isalnum() or ch == "-").strip("-")
    local_env.kubectl("create", "namespace", ns)
    yield Demos(local_env, ns)
    # While the test's operator still runs (it removes its finalizer); whatever stays is named by the
    # tier check below, which fails the test.
    local_env.kubectl("delete", "chaosdemos", "--all", "-n", ns, "--wait=true", "--timeout=60s", check=False)
    local_env.kubectl("delete", "namespace", ns, "--wait=false", check=False)


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


@pytest.fixture
def docker_host(local_env: LocalEnv) -> str:
    if not local_env.docker_host:
        pytest.skip(f"no Docker engine in the local tier: {local_env.docker_error}")
    return local_env.docker_host


def running(host: str, name: str) -> bool:
    out = docker_cli(host, "inspect", "-f", "{{.State.Running}}", name, check=False)
    return out.stdout.decode().strip() == "true"


def node_kill(env: LocalEnv, demos: Demos, name: str, down: int, **spec: object) -> str:
    """Apply a node-kill demo on a TiKV pod whose node does not also host PD; return that node."""
    pod = pod_away_from_pd(env)
    demos.apply(name, fault={"action": "node-kill", "nodeDownSeconds": down}, target={"pod": pod}, **spec)
    return str(tikv_pods(env)[pod]["spec"]["nodeName"])


REPO = Path(__file__).resolve().parents[2]


def operator_deletions(env: LocalEnv, since: str) -> list[str]:
    """TiKV pods the operators deleted since ``since``, from the API server's audit log."""
    assert env.cluster is not None
    return [d["name"] for d in env.cluster.operator_deletions("tidb-cluster", "basic-tikv-") if d["at"] >= since]


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


@pytest.fixture(scope="module")
def helm() -> str:
    """helm, built from its Go module (cached)."""
    out = subprocess.run(["bash", str(REPO / "hack" / "build-helm.sh")], capture_output=True, text=True, check=False)
    path = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else ""
    if not path or not Path(path).exists():
        pytest.skip(f"helm could not be built from the Go module proxy: {out.stderr.strip()[-300:]}")
    return path

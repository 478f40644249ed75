"""What a test left in the local tier: the tier read before and after it, compared, waited on, removed.

Every local-tier test ends with the tier as it found it, or fails, naming what is left: a ChaosDemo
(a finalizer nobody removes keeps it for ever), a namespace, a Lease, an RBAC object, an undo-ledger
entry, an operator process, a node container that is stopped or new, or a cluster that is not healthy
again. What was there before the test is not its doing and is not counted; the session's shared
operator, and the leader Lease it holds, are the session's. ``left_behind`` is the pure comparison;
``read_tier`` reads the real thing; ``remove`` takes away what a failed check found, so that no later
test sees it (the test that left it has failed by then).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from chaosdemo_local.cluster.docker_nodes import docker_cli
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.pki import ADMIN_TOKEN
from chaosdemo_local.reaper import MARK, processes

__all__ = ["Reader", "TierState", "describe", "going_namespaces", "left_behind", "operator_pids", "read_tier", "remove",
           "wait_clean"]

LEDGER = "chaosdemo-undo-ledger"
# The control plane's own: its components' leader election and the kubelets' heartbeats.
SYSTEM_NAMESPACES = ("kube-system", "kube-node-lease")
OPERATOR_ARGV = " -m chaosdemo run"
# What kube-scheduler logs when an update contradicts what it assumed (seen here after a restart of the API
# server, and a TiKV pod stayed Pending for good two tests later); a restart of the scheduler rebuilds it.
CORRUPT = "Scheduler cache is corrupted"
SCHEDULER_START = "Starting Kubernetes Scheduler"  # each start appends to the same log


@dataclass(frozen=True)
class TierState:
    """What a test can leave, each as key -> what it is (for the message)."""

    demos: dict[str, str] = field(default_factory=dict)        # "ns/name" -> "phase X, finalizers [...]"
    namespaces: dict[str, str] = field(default_factory=dict)   # name -> phase
    leases: dict[str, str] = field(default_factory=dict)       # "ns/name" -> holder
    rbac: dict[str, str] = field(default_factory=dict)         # "Kind ns/name" -> ""
    ledger: dict[str, str] = field(default_factory=dict)       # "ns/key" -> entry
    operators: dict[int, str] = field(default_factory=dict)    # pid -> command line
    containers: dict[str, str] = field(default_factory=dict)   # name -> Docker state
    unhealthy: str = ""                                         # why the cluster is not healthy, or ""
    scheduler_corrupt: int = 0                                  # times the running kube-scheduler logged its
                                                                # cache corrupted (a restart starts it afresh)


def _holder_pid(holder: str) -> int | None:
    """The pid in a leader Lease's holder (``host-pid-hex``), or None for another kind of holder."""
    parts = holder.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def left_behind(before: TierState, after: TierState, shared: Collection[int] = ()) -> list[str]:
    """What ``after`` holds that ``before`` did not, as one line each; [] when the tier is as it was.

    ``shared``: pids of the session's shared operator, which outlives tests by design.
    """
    going = going_namespaces(before, after)

    def goes(key: str) -> bool:  # "ns/name" or "Kind ns/name", in a namespace on its way out
        return key.rsplit(" ", 1)[-1].split("/", 1)[0] in going and "/" in key

    out = [f"ChaosDemo {k} ({v})" for k, v in sorted(after.demos.items()) if k not in before.demos]
    out += [f"namespace {k} ({v})" for k, v in sorted(after.namespaces.items())
            if k not in before.namespaces and k not in going]
    for key, holder in sorted(after.leases.items()):
        if before.leases.get(key) == holder or not holder or goes(key):
            continue  # as it was, or handed back (a leader Lease let go on a clean stop)
        pid = _holder_pid(holder)
        if pid is not None and pid in after.operators:
            continue  # held by an operator that still runs: a shared one's, checked below
        out.append(f"Lease {key} held by {holder}")
    out += [k for k in sorted(after.rbac) if k not in before.rbac and not goes(k)]
    out += [f"undo-ledger entry {k}: {v}" for k, v in sorted(after.ledger.items()) if k not in before.ledger]
    out += [f"operator process {pid}: {cmd}" for pid, cmd in sorted(after.operators.items()) if pid not in shared]
    for name, state in sorted(after.containers.items()):
        if name not in before.containers:
            out.append(f"container {name} ({state}), made by the test")
        elif state != before.containers[name]:
            out.append(f"container {name} {state}, {before.containers[name]} before the test")
    out += [f"node container {name} gone" for name in sorted(before.containers) if name not in after.containers]
    if after.unhealthy and not before.unhealthy:
        out.append(f"the cluster is not healthy again: {after.unhealthy}")
    if after.scheduler_corrupt and not before.scheduler_corrupt:
        out.append(f"kube-scheduler logged '{CORRUPT}': from then on it may never schedule a pod again")
    return out


def going_namespaces(before: TierState, after: TierState) -> set[str]:
    """Namespaces made since ``before`` and being deleted now, with no ChaosDemo left in them.

    The namespace controller takes 5.3 s here to delete even an empty namespace (measured: create,
    then ``kubectl delete --wait``), which after each of some 70 tests cost minutes a run; such a
    namespace, and what is still in it, is on its way out. The caller checks later that it is gone.
    """
    with_demos = {k.split("/", 1)[0] for k in after.demos}
    return {k for k, v in after.namespaces.items()
            if k not in before.namespaces and v == "Terminating" and k not in with_demos}


def operator_pids(root: int | None = None) -> dict[int, str]:
    """The operator processes of this run (``python -m chaosdemo run``), not zombies: those below ``root``
    (this process), and those it spawned whose parent has gone since (they carry its mark).

    Never another run's: a second run of the tests on the same machine has operators of its own, and
    the check removes what it finds.
    """
    root = os.getpid() if root is None else root
    mark = f"{MARK}={root}".encode()
    table = {pid: (ppid, " ".join(argv)[:200], OPERATOR_ARGV in " ".join(argv) and mark in environ.split(b"\0"))
             for pid, (ppid, argv, environ) in processes().items()}

    def ours(pid: int) -> bool:
        seen = set()
        while pid in table and pid not in seen:
            seen.add(pid)
            if pid == root or table[pid][2]:
                return True
            pid = table[pid][0]
        return False

    return {pid: cmd for pid, (_, cmd, _) in table.items() if OPERATOR_ARGV in cmd and pid != root and ours(pid)}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


class Reader:
    """GETs over one kept-alive connection each to the API server and the tier's Docker engine.

    The check runs twice around every test of the tier: a kubectl, a docker process or a new TLS
    handshake per read cost 0.3-0.5 s a check on a busy machine; these cost milliseconds.
    """

    def __init__(self, env: LocalEnv) -> None:
        assert env.cluster is not None
        self.env = env
        url = urllib.parse.urlsplit(env.cluster.server)
        ctx = ssl.create_default_context(cafile=str(env.cluster.workdir / "pki" / "ca.crt"))
        self._api = lambda: http.client.HTTPSConnection(url.hostname or "", url.port, context=ctx, timeout=10)
        self._docker = lambda: _UnixConnection(env.docker_host.removeprefix("unix://"))
        self._conns: dict[str, http.client.HTTPConnection] = {}

    def _get(self, which: str, path: str, headers: dict[str, str], retry_for: float = 30) -> Any:
        """The JSON answer. A kept-alive connection the server closed meanwhile is opened again once; a 429
        (the API server's "storage is (re)initializing" for a CRD just applied) is retried after the delay
        it asks for, as kubectl does, for up to ``retry_for`` seconds."""
        deadline, reopened = time.monotonic() + retry_for, False
        while True:
            conn = self._conns.get(which) or (self._api() if which == "api" else self._docker())
            self._conns[which] = conn
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._conns.pop(which, None)
                if reopened:
                    raise
                reopened = True
                continue
            if resp.status == 429 and time.monotonic() < deadline:
                time.sleep(min(float(resp.getheader("Retry-After") or 1), 1.0))
                continue
            if resp.status != 200:
                raise OSError(f"GET {path}: HTTP {resp.status} {body[:200]!r}")
            return json.loads(body)

    def api(self, path: str) -> Any:
        return self._get("api", path, {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def containers(self) -> dict[str, str]:
        if not self.env.docker_host.startswith("unix://"):
            return {}
        return {c["Names"][0].lstrip("/"): c["State"] for c in self._get("docker", "/containers/json?all=1", {})}

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def read_tier(env: LocalEnv, reader: Reader | None = None, *, health: bool = True) -> TierState:
    """The tier as it is now, from the API server, /proc and the tier's Docker engine."""
    own = reader is None
    reader = reader or Reader(env)
    try:
        return _read(env, reader, health)
    finally:
        if own:
            reader.close()


def _read(env: LocalEnv, reader: Reader, health: bool) -> TierState:
    demos = {}
    for d in reader.api("/apis/chaosdemo.dev/v1alpha1/chaosdemos")["items"]:
        meta = d["metadata"]
        demos[f"{meta['namespace']}/{meta['name']}"] = (
            f"phase {(d.get('status') or {}).get('phase')}, finalizers {meta.get('finalizers') or []}"
            + (", being deleted" if meta.get("deletionTimestamp") else ""))
    namespaces = {n["metadata"]["name"]: n.get("status", {}).get("phase", "")
                  for n in reader.api("/api/v1/namespaces")["items"]}
    leases = {f"{x['metadata']['namespace']}/{x['metadata']['name']}": x.get("spec", {}).get("holderIdentity") or ""
              for x in reader.api("/apis/coordination.k8s.io/v1/leases")["items"]
              if x["metadata"]["namespace"] not in SYSTEM_NAMESPACES}
    rbac = {}
    for kind, path in (("Role", "roles"), ("RoleBinding", "rolebindings"), ("ClusterRole", "clusterroles"),
                       ("ClusterRoleBinding", "clusterrolebindings")):
        for x in reader.api(f"/apis/rbac.authorization.k8s.io/v1/{path}")["items"]:
            meta = x["metadata"]
            if meta.get("namespace") in SYSTEM_NAMESPACES or meta["name"].startswith(("system:", "kubeadm:")):
                continue
            rbac[f"{kind} {meta.get('namespace', '')}/{meta['name']}".replace(" /", " ")] = ""
    selector = urllib.parse.quote(f"metadata.name={LEDGER}")
    ledger = {f"{c['metadata']['namespace']}/{k}": v[:160]
              for c in reader.api(f"/api/v1/configmaps?fieldSelector={selector}")["items"]
              for k, v in (c.get("data") or {}).items()}
    containers = reader.containers() if env.docker_host else {}
    unhealthy = ""
    if health:
        ok, why = env.healthy()
        unhealthy = "" if ok else why
    log = env.cluster.workdir / "logs" / "kube-scheduler.log" if env.cluster is not None else None
    text = log.read_text(errors="replace") if log is not None and log.exists() else ""
    corrupt = text[max(text.rfind(SCHEDULER_START), 0):].count(CORRUPT)  # since the scheduler last started
    return TierState(demos, namespaces, leases, rbac, ledger, operator_pids(), containers, unhealthy, corrupt)


def describe(state: TierState) -> str:
    """The tier as a person reads it after a failure: everything a test could have left, one line each."""
    lines = [f"ChaosDemo {k}: {v}" for k, v in sorted(state.demos.items())]
    lines += [f"namespace {k}: {v}" for k, v in sorted(state.namespaces.items()) if v != "Active"]
    lines += [f"Lease {k}: held by {v or '(nobody)'}" for k, v in sorted(state.leases.items())]
    lines += [f"undo-ledger entry {k}: {v}" for k, v in sorted(state.ledger.items())]
    lines += [f"operator process {pid}: {cmd}" for pid, cmd in sorted(state.operators.items())]
    lines += [f"container {k}: {v}" for k, v in sorted(state.containers.items())]
    lines.append(f"cluster: {'healthy' if not state.unhealthy else 'NOT healthy: ' + state.unhealthy}")
    return "\n".join(lines)


def wait_clean(read: Callable[[], TierState], before: TierState, shared: Callable[[], Collection[int]],
               timeout: float) -> tuple[list[str], TierState]:
    """Wait until nothing is left behind (deleting a namespace takes the API server a moment), with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        after = read()
        left = left_behind(before, after, shared())
        if not left or time.monotonic() > deadline:
            return left, after
        time.sleep(0.25)


def remove(env: LocalEnv, before: TierState, after: TierState, shared: Collection[int] = ()) -> None:
    """Take away what a test left (it has failed already), so that the next test starts from a clean tier."""
    for key in after.demos.keys() - before.demos.keys():
        ns, name = key.split("/", 1)
        env.kubectl("patch", "chaosdemo", name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                    check=False)
        env.kubectl("delete", "chaosdemo", name, "-n", ns, "--wait=false", check=False)
    for pid in after.operators.keys() - set(shared):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for key, holder in after.leases.items():
        if before.leases.get(key) != holder and holder:
            ns, name = key.split("/", 1)
            env.kubectl("delete", "lease", name, "-n", ns, "--wait=false", check=False)
    for key in after.ledger.keys() - before.ledger.keys():
        ns, entry = key.split("/", 1)
        env.kubectl("patch", "configmap", LEDGER, "-n", ns, "--type=merge", "-p",
                    json.dumps({"data": {entry: None}}), check=False)
    for key in after.rbac.keys() - before.rbac.keys():
        kind, where = key.split(" ", 1)
        ns, _, name = where.rpartition("/")
        env.kubectl("delete", kind.lower(), name, *(["-n", ns] if ns else []), "--wait=false", check=False)
    for ns in after.namespaces.keys() - before.namespaces.keys():
        env.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    if after.scheduler_corrupt and env.cluster is not None:
        env.cluster.restart("kube-scheduler", down_seconds=0)
    if env.docker_host:
        for name, state in after.containers.items():
            if name not in before.containers:
                docker_cli(env.docker_host, "rm", "-f", name, check=False)
            elif state != before.containers[name] and before.containers[name] == "running":
                docker_cli(env.docker_host, "start", name, check=False)

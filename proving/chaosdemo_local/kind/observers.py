"""What Kubernetes, PD and tidb-operator show of the TiKV stores while a demo runs on the kind tier.

Read from outside the operator, independently of it, once a second: the TiKV pods (Ready, restarts,
uid, as the API server has them), PD's store states (``GET /pd/api/v1/stores`` through the API server's
service proxy), and tidb-operator's TidbCluster status (its Ready condition, the store states it copied
from PD, its failure stores) with the TiKV StatefulSet's replicas. A row is kept per change, with the
wall-clock time of the read, so that each observer's first sight of a fault can be set beside the
operator's own ``injectedAt`` and ``detectedAt``. A time read this way is late by at most one period or
one read, whichever is longer (``resolution``, measured each run and reported with it).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chaosdemo_local.cluster.tikv import TIKV
from chaosdemo_local.kind.env import KindEnv
from chaosdemo_local.kind.steps import TIDB_NS

__all__ = ["Observers", "Row", "Sight", "sights"]

CLUSTER = "basic"


@dataclass(frozen=True)
class Row:
    """One read of the three observers. Per pod: Kubernetes' view, PD's state name, tidb-operator's state."""

    at: float  # wall clock (time.time()) when the read began
    tc_ready: str  # "True/Ready", "False/TiKVStoreNotUp", ...
    tc_stores: dict[str, str]  # pod -> the state tidb-operator copied from PD
    failure_stores: int
    replicas: int
    pd_stores: dict[str, str]  # pod -> PD's state name
    pods: dict[str, tuple[bool, int, str, bool]]  # pod -> (Ready, restarts, uid, being deleted)

    def key(self) -> tuple[Any, ...]:
        return (self.tc_ready, self.tc_stores, self.failure_stores, self.replicas, self.pd_stores, self.pods)


@dataclass(frozen=True)
class Sight:
    """When an observer first showed the fault after the injection, and when it first showed it over."""

    first: float | None = None
    over: float | None = None
    what: str = ""


def _pod_row(pod: dict[str, Any]) -> tuple[bool, int, str, bool]:
    st = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
    restarts = sum(c.get("restartCount", 0) for c in st.get("containerStatuses") or [])
    return ready, restarts, pod["metadata"]["uid"], bool(pod["metadata"].get("deletionTimestamp"))


class Observers:
    """A thread that reads the observers every ``period`` seconds while in its ``with`` block."""

    def __init__(self, env: KindEnv, period: float = 1.0) -> None:
        self.env, self.period = env, period
        self.stop, self.lock = threading.Event(), threading.Lock()
        self.rows: list[Row] = []
        self.read_seconds: list[float] = []  # how long each read took: the resolution of the times reported
        self.pool = ThreadPoolExecutor(max_workers=3)
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def read(self) -> Row:
        """The three reads at once (each a kubectl process): the row's time is when they began."""
        at = time.time()
        both_f = self.pool.submit(self.env.kubectl_json, "get", f"tidbcluster/{CLUSTER}", f"statefulset/{CLUSTER}-tikv",
                                  "-n", TIDB_NS)
        stores_f = self.pool.submit(self.env.api,
                                    f"/api/v1/namespaces/{TIDB_NS}/services/{CLUSTER}-pd:2379/proxy/pd/api/v1/stores")
        pods_f = self.pool.submit(self.env.kubectl_json, "get", "pods", "-n", TIDB_NS, "-l", TIKV)
        tc, sts = both_f.result()["items"]
        st = tc.get("status") or {}
        ready: dict[str, Any] = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), {})
        tikv = st.get("tikv") or {}
        stores = stores_f.result().get("stores") or []
        pods = pods_f.result()["items"]
        self.read_seconds.append(time.time() - at)
        return Row(at=at, tc_ready=f"{ready.get('status')}/{ready.get('reason')}",
                   tc_stores={v["podName"]: v["state"] for v in (tikv.get("stores") or {}).values()},
                   failure_stores=len(tikv.get("failureStores") or {}), replicas=sts["spec"]["replicas"],
                   pd_stores={s["store"]["address"].split(".")[0]: s["store"].get("state_name", "")
                              for s in stores},
                   pods={p["metadata"]["name"]: _pod_row(p) for p in pods})

    def look(self) -> None:
        try:
            row = self.read()
        except (subprocess.SubprocessError, ValueError, KeyError, TypeError, IndexError):
            return  # the next read tells
        with self.lock:
            if not self.rows or self.rows[-1].key() != row.key():
                self.rows.append(row)

    def _poll(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            self.look()
            self.stop.wait(max(0.0, self.period - (time.monotonic() - t0)))

    def __enter__(self) -> Observers:
        self.look()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.look()
        self.pool.shutdown(wait=True)

    def resolution(self) -> float:
        """The longest gap between two reads' starts: an observer's time is late by at most this."""
        return max(self.period, max(self.read_seconds, default=0.0))

    def story(self, since: float | None = None) -> str:
        t0 = since if since is not None else (self.rows[0].at if self.rows else 0.0)
        return "\n".join(
            f"  {r.at - t0:+7.1f}s tidb-operator {r.tc_ready:<24} {_states(r.tc_stores)} failureStores="
            f"{r.failure_stores} sts={r.replicas} | PD {_states(r.pd_stores)} | pods "
            + " ".join(f"{p.rsplit('-', 1)[-1]}={'Ready' if v[0] else 'NotReady'}/{v[1]}{'/deleting' if v[3] else ''}"
                     for p, v in sorted(r.pods.items()))
            for r in self.rows)


def _states(d: dict[str, str]) -> str:
    return ",".join(f"{k.rsplit('-', 1)[-1]}={v}" for k, v in sorted(d.items())) or "-"


Why = Callable[[Row], str]


def _sight(rows: list[Row], since: float, changed: Why, unwell: Why) -> Sight:
    """The first read from ``since`` where ``changed`` says why, then the first read after it where ``unwell``
    says nothing (the fault over, as this observer shows it)."""
    first: float | None = None
    what = ""
    for r in rows:
        if r.at < since:
            continue
        if first is None:
            what = changed(r)
            first = r.at if what else None
        if first is not None and not unwell(r):  # the same read may show both (a restart, Ready again)
            return Sight(first, r.at, what)
    return Sight(first, None, what)


def sights(rows: list[Row], pod: str, uid: str, since: float) -> dict[str, Sight]:
    """Each observer's first sight of a fault of ``pod`` (whose uid was ``uid``) in the reads from ``since``,
    and its first read that shows the fault over.

    Kubernetes: the pod deleted, gone, not Ready, restarted or replaced; over once a pod of that name is
    Ready again. PD: the store not Up. tidb-operator: its copy of the store not Up, or its Ready condition
    not True.
    """
    before = [r.pods[pod][1] for r in rows if pod in r.pods and r.pods[pod][2] == uid]
    restarts0 = before[0] if before else 0

    def kube_unwell(r: Row) -> str:
        if pod not in r.pods:
            return "pod gone"
        ready, _, _, deleting = r.pods[pod]
        return "pod being deleted" if deleting else "" if ready else "pod not Ready"

    def kube_changed(r: Row) -> str:
        if pod in r.pods and r.pods[pod][2] != uid:
            return "pod replaced"
        if pod in r.pods and r.pods[pod][1] > restarts0:
            return "container restarted"
        return kube_unwell(r)

    def pd(r: Row) -> str:
        state = r.pd_stores.get(pod, "")
        return "" if state == "Up" else f"store {state or 'missing'}"

    def tidb_operator(r: Row) -> str:
        state = r.tc_stores.get(pod, "")
        if state != "Up":
            return f"store {state or 'missing'}"
        return "" if r.tc_ready.startswith("True") else f"Ready={r.tc_ready}"

    return {"kubernetes": _sight(rows, since, kube_changed, kube_unwell), "pd": _sight(rows, since, pd, pd),
            "tidb-operator": _sight(rows, since, tidb_operator, tidb_operator)}

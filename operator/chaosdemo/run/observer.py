"""Observation: one look at the cluster, from Kubernetes and PD at once, as a Snapshot.

Nodes and the StatefulSet are read through the watch journal when one is
given: as the last watch event showed them, read again after ``max_age``
seconds without one. The TiKV pods are always listed: they are the proof.

PD not answering is itself an observation (``pd_error``), judged by the
``pd-reachable`` invariant, rather than an exception that stops the watch.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chaosdemo.api.errors import NotAKindNode, PDLeaderless, PDUnavailable, Unavailable
from chaosdemo.clients.docker import DockerClient
from chaosdemo.clients.kube import KubeClient
from chaosdemo.clients.pd import PDClient
from chaosdemo.clients.tikv import StoreProbe
from chaosdemo.core.journal import Subject, WatchJournal, node_subject, statefulset_subject
from chaosdemo.core.snapshot import (
    PD_READS,
    REGION_CHECKS,
    NodeContainer,
    NodeState,
    PodState,
    Snapshot,
    StatefulSetState,
    node_from_api,
    pd_clock_ahead,
    pd_leader_from,
    pd_members_from,
    pd_selector,
    pod_from_api,
    statefulset_from_api,
    stores_from_pd,
    tidb_operator_from_api,
)

__all__ = ["Observer", "PDView"]


@dataclass(frozen=True)
class PDView:
    """One look's PD reads as PD answered them (``Observer._pd``): an unread one is empty and named in
    ``unread``; ``error`` says why when PD answered none."""

    stores: dict[str, Any] = field(default_factory=dict)
    health: list[dict[str, Any]] = field(default_factory=list)
    members: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    error: str = ""
    unread: tuple[tuple[str, str], ...] = ()
    leaderless: bool = False


class Observer:
    def __init__(
        self,
        kube: KubeClient,
        pd: PDClient,
        cluster: str,
        namespace: str,
        *,
        clock: Callable[[], float] = time.time,
        journal: WatchJournal | None = None,
        max_age: float = 30.0,
        probe: StoreProbe | None = None,
    ) -> None:
        self.kube, self.pd, self.probe = kube, pd, probe
        self.journal, self.max_age = journal, max_age
        self.cluster, self.namespace = cluster, namespace
        self.clock = clock
        self.watched_nodes: set[str] = set()
        self.docker: DockerClient | None = None
        self.node_containers: set[str] = set()

    async def aclose(self) -> None:
        if self.probe is not None:
            await self.probe.aclose()

    def watch_node_containers(self, docker: DockerClient | None, names: Iterable[str]) -> None:
        """Also read Docker's state of these kind node containers (the Docker-level faults)."""
        self.docker = docker
        self.node_containers.update(n for n in names if n)

    async def _containers(self) -> tuple[NodeContainer, ...]:
        if self.docker is None:
            return ()
        out = []
        for name in sorted(self.node_containers):
            try:
                st = await self.docker.kind_node(name)
            except (Unavailable, NotAKindNode):
                continue  # no verdict from Docker is no observation, not a dead node
            out.append(NodeContainer(name, st.running, st.started_at, st.finished_at, st.exit_code))
        return tuple(out)

    def watch_nodes(self, names: Iterable[str]) -> None:
        self.watched_nodes.update(n for n in names if n)

    async def _pd(self) -> PDView:
        """PD's stores, members' health, members (its leader) and region checks, each read on its own: one that
        PD does not answer (real PD's /health asks every member in turn, 3 s each, so one dead member holds it
        up) is named in the partial view and costs nothing else; only when none answers is PD unreachable."""
        answers = await asyncio.gather(self.pd.stores(), self.pd.health(), self.pd.members(),
                                       *(self.pd.region_check(c) for c in REGION_CHECKS), return_exceptions=True)
        for a in answers:
            if isinstance(a, BaseException) and not isinstance(a, PDUnavailable):
                raise a
        unread = tuple((read, a.message) for read, a in zip(PD_READS, answers, strict=True)
                       if isinstance(a, PDUnavailable))
        leaderless = any(isinstance(a, PDLeaderless) for a in answers)
        if len(unread) == len(PD_READS):
            return PDView(error=unread[0][1], leaderless=leaderless)
        stores, health, members, *checks = (None if isinstance(a, PDUnavailable) else a for a in answers)
        counts = {c: int(r.get("count", 0)) for c, r in zip(REGION_CHECKS, checks, strict=True) if r is not None}
        return PDView(stores or {}, health or [], members or {}, counts, "", unread, leaderless)

    async def _read(self, subject: Subject, get: Callable[[], Awaitable[dict[str, Any] | None]]
                    ) -> dict[str, Any] | None:
        return await (get() if self.journal is None else self.journal.read(subject, self.max_age, get))

    async def snapshot(self) -> Snapshot:
        taken_at, sts = self.clock(), f"{self.cluster}-tikv"
        pods_raw, pd_pods_raw, sts_raw, pd_view, containers, tc = await asyncio.gather(
            self.kube.cluster.list_tikv_pods(self.namespace, self.cluster),
            self.kube.cluster.list_pods(self.namespace, pd_selector(self.cluster), "PD"),
            self._read(statefulset_subject(self.namespace, sts),
                       functools.partial(self.kube.cluster.get_statefulset, self.namespace, sts)),
            self._pd(),
            self._containers(),
            self._tidbcluster(),
        )
        pods = tuple(sorted((pod_from_api(p) for p in pods_raw), key=lambda p: p.name))
        statefulset = statefulset_from_api(sts_raw) if sts_raw else None
        self.watch_nodes(p.node for p in pods)
        answers, *node_objs = await asyncio.gather(
            self._ask_stores(pods, statefulset),
            *(self._read(node_subject(n), functools.partial(self.kube.cluster.get_node, n))
              for n in sorted(self.watched_nodes)))
        nodes = tuple(
            node_from_api(n) if n is not None else NodeState(name=name, ready="Unknown", reason="NodeMissing")
            for name, n in zip(sorted(self.watched_nodes), node_objs, strict=True)
        )
        return Snapshot(
            taken_at=taken_at,
            cluster=self.cluster,
            namespace=self.namespace,
            pods=pods,
            pd_pods=tuple(sorted((pod_from_api(p) for p in pd_pods_raw), key=lambda p: p.name)),
            statefulset=statefulset,
            stores=stores_from_pd(pd_view.stores, self.cluster, self.namespace) if pd_view.stores else (),
            region_checks=pd_view.checks,
            pd_members=pd_members_from(pd_view.health),
            pd_error=pd_view.error,
            pd_unread=pd_view.unread,
            pd_leaderless=pd_view.leaderless,
            pd_leader=pd_leader_from(pd_view.members),
            nodes=nodes,
            node_containers=containers,
            store_answers=tuple(sorted(answers.items())),
            tidb_operator=tidb_operator_from_api(tc),
            pd_clock_ahead=pd_clock_ahead(self.pd.stores_date_ahead) if pd_view.stores else 0.0,
        )

    async def _tidbcluster(self) -> dict[str, Any] | None:
        """tidb-operator's status of the cluster, for who saw the fault when; unread is no verdict."""
        try:
            return await self.kube.cluster.get_tidbcluster(self.namespace, self.cluster)
        except Unavailable:
            return None

    async def _ask_stores(self, pods: tuple[PodState, ...], sts: StatefulSetState | None) -> dict[str, str]:
        """Each Ready TiKV pod of the StatefulSet (never a pod that only copies its labels), asked at its IP."""
        if self.probe is None or sts is None:
            return {}
        own = f"StatefulSet/{sts.name}/{sts.uid}"
        return await self.probe.ask_all({p.name: p.ip for p in pods
                                         if p.owner == own and p.ready and not p.deleting and p.ip})

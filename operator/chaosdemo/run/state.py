"""One demo's run as it goes from stage to stage: what it talks to, its demo and record, what it carries.

Made once per run (``RunState.open``) and handed to each stage in turn (``run/stages.py``,
``run/follow.py``); the stages keep nothing of their own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from chaosdemo.api.models import ChaosDemoStatus, TargetStatus
from chaosdemo.clients.pd import PDClient
from chaosdemo.clients.tikv import StoreProbe
from chaosdemo.clients.tls import ClusterTLS
from chaosdemo.core.addresses import pd_url as pd_of
from chaosdemo.core.invariants import InvariantConfig
from chaosdemo.run.canary import Canary
from chaosdemo.run.demo import Demo, Progress
from chaosdemo.run.deps import Deps
from chaosdemo.run.faults import Fault
from chaosdemo.run.observer import Observer
from chaosdemo.run.status_record import Record

__all__ = ["RunState"]

log = logging.getLogger(__name__)


@dataclass
class RunState:
    deps: Deps
    demo: Demo
    progress: Progress  # the pure step's state, the last snapshot, the journal cursor
    fault: Fault
    pd_url: str
    pd: PDClient
    observer: Observer  # the demo's eyes: Kubernetes through the watch journal, PD, each store's status port
    inv_cfg: InvariantConfig
    canary: Canary | None = None  # the SQL canary (spec.canary), from the preflight or the resume on

    @classmethod
    def open(cls, deps: Deps, demo: Demo, progress: Progress) -> RunState:
        """The clients this demo needs; a PD URL the settings refuse raises (the demo is Aborted)."""
        s = deps.settings
        pd_url = pd_of(s.pd_url_template, s.cluster_domain, demo.cluster, demo.cluster_ns, demo.spec.cluster.pd_url)
        pd = PDClient(pd_url, timeout=s.pd_timeout_seconds, session=deps.pd_session, max_body=s.pd_max_body_bytes)
        probe = (StoreProbe(deps.pd_session, port=s.store_status_port, timeout=s.store_probe_timeout_seconds)
                 if s.store_probe else None)
        observer = Observer(deps.kube, pd, demo.cluster, demo.cluster_ns, clock=deps.clock, journal=deps.journal,
                            probe=probe)
        return cls(deps=deps, demo=demo, progress=progress, fault=deps.faults(demo.spec.fault, deps.kube, deps.docker),
                   pd_url=pd_url, pd=pd, observer=observer,
                   inv_cfg=InvariantConfig(heartbeat_stale_seconds=s.heartbeat_stale_seconds))

    def use_tls(self, tls: ClusterTLS, pd_hostname: str | None) -> None:
        """PD and each store's status port over https, with the cluster's CA and client certificate."""
        self.pd.use_tls(tls.context, pd_hostname)
        self.pd_url = self.pd.base_url
        cluster, ns = self.demo.cluster, self.demo.cluster_ns
        if self.observer.probe is not None:
            self.observer.probe.use_tls(tls.context, lambda pod: ClusterTLS.store_name(pod, cluster, ns))

    @property
    def rec(self) -> Record:
        return self.demo.rec

    @property
    def status(self) -> ChaosDemoStatus:
        return self.demo.rec.status

    @property
    def target(self) -> TargetStatus:
        return self.demo.target

    async def aclose(self) -> None:
        if self.canary is not None:  # on every way out: its statements stopped, its database dropped
            canary, self.canary = self.canary, None
            try:
                async with asyncio.timeout(30):
                    await canary.stop()
                    await canary.drop()
            except TimeoutError:
                log.warning("the SQL canary's database %s was not dropped within 30s", canary.plan.db)
        await self.pd.aclose()
        await self.observer.aclose()

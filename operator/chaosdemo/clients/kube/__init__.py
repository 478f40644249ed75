"""The Kubernetes API, through kubernetes_asyncio, returning plain dicts: one client, six concerns.

``KubeClient`` holds one connection (``transport``) and what the run asks of it, by concern:
``demos`` (ChaosDemos and their status), ``cluster`` (the TidbCluster, TiKV pods, StatefulSet,
nodes), ``events``, ``leases``, ``ledger`` (what the operator must still undo) and ``suites`` (ChaosDemoSuites and the
demos they own). The stages
are plain async code over dicts, and a test can give them any API server.
"""

from __future__ import annotations

from kubernetes_asyncio import client

from chaosdemo.clients.kube.cluster import TIDB_GROUP, TIDB_PLURAL, TIDB_VERSION, ClusterObjects
from chaosdemo.clients.kube.demos import Demos
from chaosdemo.clients.kube.events import Events
from chaosdemo.clients.kube.leases import Leases
from chaosdemo.clients.kube.ledger import Ledger
from chaosdemo.clients.kube.suites import Suites
from chaosdemo.clients.kube.transport import USER_AGENT, Transport, connect

__all__ = ["TIDB_GROUP", "TIDB_PLURAL", "TIDB_VERSION", "USER_AGENT", "KubeClient"]


class KubeClient:
    def __init__(self, api: client.ApiClient) -> None:
        self.transport = Transport(api)
        self.demos = Demos(self.transport)
        self.cluster = ClusterObjects(self.transport)
        self.events = Events(self.transport)
        self.leases = Leases(self.transport)
        self.ledger = Ledger(self.transport)
        self.suites = Suites(self.transport)

    @classmethod
    async def connect(cls, kubeconfig: str | None = None) -> KubeClient:
        """In a pod, the ServiceAccount; elsewhere the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        return cls(await connect(kubeconfig))

    async def aclose(self) -> None:
        await self.transport.api.close()

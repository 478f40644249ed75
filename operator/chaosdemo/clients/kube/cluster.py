"""The target cluster's objects: the TidbCluster, its TiKV pods, StatefulSet, PD Service and nodes.

One write: a pod's deletion.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes_asyncio import client

from chaosdemo.clients.kube.transport import Transport, failed
from chaosdemo.core.snapshot import tikv_selector

__all__ = ["TIDB_GROUP", "TIDB_PLURAL", "TIDB_VERSION", "ClusterObjects"]

TIDB_GROUP, TIDB_VERSION, TIDB_PLURAL = "pingcap.com", "v1alpha1", "tidbclusters"
MAX_PODS = 200  # pods of one selector read by a look
MAX_NODE_PODS = 250

log = logging.getLogger(__name__)


class ClusterObjects:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    async def get_tidbcluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.t.get_custom(TIDB_GROUP, TIDB_VERSION, TIDB_PLURAL, namespace, name)

    async def list_tikv_pods(self, namespace: str, cluster: str) -> list[dict[str, Any]]:
        return await self.list_pods(namespace, tikv_selector(cluster), "TiKV")

    async def list_pods(self, namespace: str, selector: str, what: str) -> list[dict[str, Any]]:
        """At most ``MAX_PODS`` pods of the selector: every look reads them, and whoever may create pods in
        the namespace may give any number of them these labels (only the TidbCluster's own are ever members)."""
        found = await self.t.read(f"{what} pods in {namespace}", self.t.core.list_namespaced_pod(
            namespace, label_selector=selector, limit=MAX_PODS, _preload_content=False))
        items: list[dict[str, Any]] = (found or {}).get("items") or []
        if ((found or {}).get("metadata") or {}).get("continue"):
            log.warning("more than %d %s pods in %s match %s: only the first %d are read", MAX_PODS, what,
                        namespace, selector, MAX_PODS)
        return items

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.t.read(f"pod {namespace}/{name}",
                                 self.t.core.read_namespaced_pod(name, namespace, _preload_content=False))

    async def get_statefulset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.t.read(f"StatefulSet {namespace}/{name}",
                                 self.t.apps.read_namespaced_stateful_set(name, namespace, _preload_content=False))

    async def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.t.read(f"Service {namespace}/{name}",
                                 self.t.core.read_namespaced_service(name, namespace, _preload_content=False))

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The SQL canary's credentials, read only when a demo names them (and the chart granted that name)."""
        return await self.t.read(f"Secret {namespace}/{name}",
                                 self.t.core.read_namespaced_secret(name, namespace, _preload_content=False))

    async def pods_on_node(self, node: str) -> list[dict[str, Any]]:
        """Every namespace's pods on ``node`` (at most ``MAX_NODE_PODS``, as a kubelet runs at most 110)."""
        found = await self.t.read(f"pods on node {node}", self.t.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", limit=MAX_NODE_PODS, _preload_content=False))
        items: list[dict[str, Any]] = (found or {}).get("items") or []
        return items

    async def get_node(self, name: str) -> dict[str, Any] | None:
        return await self.t.read(f"node {name}", self.t.core.read_node(name, _preload_content=False))

    async def delete_pod(self, namespace: str, name: str, *, grace: int, uid: str) -> str:
        """Delete exactly the pod with this uid: 'deleted', or 'gone' if it no longer exists.

        The uid precondition makes the call safe to repeat: it can never hit
        the replacement pod the StatefulSet creates under the same name.
        """
        body = client.V1DeleteOptions(grace_period_seconds=grace, preconditions=client.V1Preconditions(uid=uid))
        what = f"delete pod {namespace}/{name}"
        status, reason = await self.t.send(what, self.t.core.delete_namespaced_pod(
            name, namespace, body=body, _preload_content=False))
        if status in (404, 409):
            return "gone"
        if not 200 <= status <= 299:
            raise failed(what, status, reason)
        return "deleted"

"""The local tier's SIMULATED tidb-operator: the objects it would create, with its names and labels.

The TidbCluster CRD (a minimal schema that keeps unknown fields), a TidbCluster
``basic`` with 1 PD, 3 TiKV and 1 TiDB, their StatefulSets and Services. The
StatefulSets are real objects handled by the real StatefulSet controller. TiKV
pods are spread one per worker, as on kind. kwok plays the kubelets, so no
process runs in them; ``pd_sim`` keeps the TidbCluster's status.

This imitation lives only here, where tidb-operator cannot run (no kubelets to
run its pods). The kind tier runs the real tidb-operator v1.6.6 instead
(``kind.KindEnv``).
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

__all__ = ["TIDB_CRD", "install", "labels", "statefulset", "tidbcluster"]

VERSION = "v8.5.7"

TIDB_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "tidbclusters.pingcap.com"},
    "spec": {
        "group": "pingcap.com",
        "scope": "Namespaced",
        "names": {"kind": "TidbCluster", "listKind": "TidbClusterList", "plural": "tidbclusters",
                  "singular": "tidbcluster", "shortNames": ["tc"]},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "description": "SIMULATED stand-in for tidb-operator's TidbCluster (minimal schema).",
                "x-kubernetes-preserve-unknown-fields": True,
            }},
        }],
    },
}


def labels(cluster: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "tidb-cluster",
        "app.kubernetes.io/managed-by": "tidb-operator",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/component": component,
    }


def tidbcluster(name: str, tikv: int = 3, *, tls: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "TidbCluster",
        "metadata": {"name": name, "annotations": {"chaosdemo.dev/simulated": "true"}},
        "spec": {
            "version": VERSION,
            "pd": {"baseImage": "pingcap/pd", "replicas": 1, "maxFailoverCount": 0},
            "tikv": {"baseImage": "pingcap/tikv", "replicas": tikv, "maxFailoverCount": 0},
            "tidb": {"baseImage": "pingcap/tidb", "replicas": 1, "maxFailoverCount": 0},
            **({"tlsCluster": {"enabled": True}} if tls else {}),
        },
    }


def statefulset(cluster: str, component: str, replicas: int, port: int, owner: dict[str, Any]) -> dict[str, Any]:
    lab = labels(cluster, component)
    pod_spec: dict[str, Any] = {
        "containers": [{
            "name": component,
            "image": f"pingcap/{component}:{VERSION}",
            "ports": [{"name": "server" if component == "tikv" else "client", "containerPort": port}],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        }],
        "terminationGracePeriodSeconds": 30,
        "automountServiceAccountToken": False,
    }
    if component == "tikv":
        pod_spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": lab}, "topologyKey": "kubernetes.io/hostname"}]}}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": f"{cluster}-{component}", "labels": lab, "ownerReferences": owned_by(owner)},
        "spec": {
            "replicas": replicas,
            "serviceName": f"{cluster}-{component}-peer",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": lab},
            "template": {"metadata": {"labels": lab}, "spec": pod_spec},
        },
    }


def owned_by(owner: dict[str, Any]) -> list[dict[str, Any]]:
    """tidb-operator's owner reference on what it creates for a TidbCluster: controlled by it."""
    return [{"apiVersion": "pingcap.com/v1alpha1", "kind": "TidbCluster", "name": owner["metadata"]["name"],
             "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]


def _service(cluster: str, component: str, name: str, ports: list[tuple[str, int]], headless: bool,
             owner: dict[str, Any]) -> dict[str, Any]:
    lab = labels(cluster, component)
    spec: dict[str, Any] = {"selector": lab, "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports]}
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "ownerReferences": owned_by(owner),
                         "labels": {**lab, "app.kubernetes.io/used-by": "peer" if headless else "end-user"}},
            "spec": spec}


async def _create(fn: Any, *args: Any) -> Any:
    try:
        return await fn(*args)
    except ApiException as e:
        if e.status != 409:
            raise
        return None


async def install(api: client.ApiClient, namespace: str = "tidb-cluster", name: str = "basic", tikv: int = 3,
                  *, tls: bool = False) -> None:
    """Create the CRD, namespace, TidbCluster, Services and StatefulSets (idempotent)."""
    ext = client.ApiextensionsV1Api(api)
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    await _create(ext.create_custom_resource_definition, TIDB_CRD)
    for _ in range(50):
        crd = await ext.read_custom_resource_definition("tidbclusters.pingcap.com")
        if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
            break
        import asyncio

        await asyncio.sleep(0.1)
    await _create(core.create_namespace, {"metadata": {"name": namespace}})
    await _create(custom.create_namespaced_custom_object, "pingcap.com", "v1alpha1", namespace, "tidbclusters",
                  tidbcluster(name, tikv, tls=tls))
    tc = await custom.get_namespaced_custom_object("pingcap.com", "v1alpha1", namespace, "tidbclusters", name)
    for svc in (
        _service(name, "pd", f"{name}-pd", [("client", 2379)], False, tc),
        _service(name, "pd", f"{name}-pd-peer", [("peer", 2380)], True, tc),
        _service(name, "tikv", f"{name}-tikv-peer", [("peer", 20160)], True, tc),
        _service(name, "tidb", f"{name}-tidb", [("mysql-client", 4000), ("status", 10080)], False, tc),
        _service(name, "tidb", f"{name}-tidb-peer", [("status", 10080)], True, tc),
    ):
        await _create(core.create_namespaced_service, namespace, svc)
    for component, replicas, port in (("pd", 1, 2379), ("tikv", tikv, 20160), ("tidb", 1, 4000)):
        await _create(apps.create_namespaced_stateful_set, namespace, statefulset(name, component, replicas, port, tc))

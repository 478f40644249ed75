"""A stand-in for what tidb-operator creates: simulated, with tidb-operator's names and labels.

The TidbCluster CRD (a minimal schema that keeps unknown fields), a TidbCluster
``basic`` with 1 PD, 3 TiKV and 1 TiDB, their StatefulSets and Services. The
StatefulSets are real objects handled by the real StatefulSet controller. TiKV
pods are spread one per worker, as on kind.

On the local tier kwok plays the kubelets and no process runs. On the kind
tier (``standin_image`` given) real kubelets run the STAND-IN processes of
``standins/`` in these pods: PD, a TiKV per pod heartbeating to it over the
pod network, and tidb-operator's status sync as a Deployment of its own.
The real tidb-operator replaces all this on the kind tier once it runs here.
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


def tidbcluster(name: str, tikv: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "TidbCluster",
        "metadata": {"name": name, "annotations": {"chaosdemo.dev/simulated": "true"}},
        "spec": {
            "version": VERSION,
            "pd": {"baseImage": "pingcap/pd", "replicas": 1, "maxFailoverCount": 0},
            "tikv": {"baseImage": "pingcap/tikv", "replicas": tikv, "maxFailoverCount": 0},
            "tidb": {"baseImage": "pingcap/tidb", "replicas": 1, "maxFailoverCount": 0},
        },
    }


def standin_container(cluster: str, namespace: str, component: str, image: str, time_scale: float) -> dict[str, Any]:
    """What runs in a pod of ``component`` on the kind tier: its STAND-IN process."""
    env = [{"name": "TIME_SCALE", "value": str(time_scale)}, {"name": "NAMESPACE", "value": namespace},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    module, port = {"pd": ("pd_server", 2379), "tikv": ("tikv_server", 20160), "tidb": ("", 4000)}[component]
    if component == "tikv":
        env += [{"name": "PD_URL", "value": f"http://{cluster}-pd.{namespace}.svc:2379"},
                {"name": "ADVERTISE_ADDR", "value": f"$(POD_NAME).{cluster}-tikv-peer.{namespace}.svc:20160"}]
    command = ["python3", "-m", f"chaosdemo_local.standins.{module}"] if module else [
        "python3", "-m", "http.server", "4000"]  # TiDB is not exercised: a port that answers stands in for it
    return {"image": image, "imagePullPolicy": "IfNotPresent", "command": command, "env": env,
            "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 1},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "allowPrivilegeEscalation": False}}


def statefulset(cluster: str, component: str, replicas: int, port: int, owner: dict[str, Any],
                standin: dict[str, Any] | None = None) -> dict[str, Any]:
    lab = labels(cluster, component)
    pod_spec: dict[str, Any] = {
        "containers": [{
            "name": component,
            "image": f"pingcap/{component}:{VERSION}",
            "ports": [{"name": "server" if component == "tikv" else "client", "containerPort": port}],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            **(standin or {}),
        }],
        "terminationGracePeriodSeconds": 30,
        "automountServiceAccountToken": False,
    }
    if standin is not None:
        pod_spec["containers"][0]["resources"] = {"requests": {"cpu": "10m", "memory": "32Mi"}}
    if component == "tikv":
        pod_spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": lab}, "topologyKey": "kubernetes.io/hostname"}]}}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": f"{cluster}-{component}",
            "labels": lab,
            "ownerReferences": [{
                "apiVersion": "pingcap.com/v1alpha1", "kind": "TidbCluster", "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": replicas,
            "serviceName": f"{cluster}-{component}-peer",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": lab},
            "template": {"metadata": {"labels": lab}, "spec": pod_spec},
        },
    }


def _service(cluster: str, component: str, name: str, ports: list[tuple[str, int]], headless: bool) -> dict[str, Any]:
    lab = labels(cluster, component)
    spec: dict[str, Any] = {"selector": lab, "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports]}
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name,
                         "labels": {**lab, "app.kubernetes.io/used-by": "peer" if headless else "end-user"}},
            "spec": spec}


async def _create(fn: Any, *args: Any) -> Any:
    try:
        return await fn(*args)
    except ApiException as e:
        if e.status != 409:
            raise
        return None


def status_sync(cluster: str, namespace: str, image: str) -> list[dict[str, Any]]:
    """tidb-operator's status sync STAND-IN (kind tier): its ServiceAccount, Role, binding and Deployment."""
    name = f"{cluster}-tidb-operator-standin"
    meta = {"name": name, "namespace": namespace}
    lab = {"app.kubernetes.io/name": "tidb-operator-standin", "app.kubernetes.io/instance": cluster}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": [{"apiGroups": ["pingcap.com"], "resources": ["tidbclusters"], "resourceNames": [cluster],
                    "verbs": ["get"]},
                   {"apiGroups": ["pingcap.com"], "resources": ["tidbclusters/status"], "resourceNames": [cluster],
                    "verbs": ["patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta, "labels": lab},
         "spec": {"replicas": 1, "selector": {"matchLabels": lab}, "template": {
             "metadata": {"labels": lab},
             "spec": {"serviceAccountName": name, "containers": [{
                 "name": "status-sync", "image": image, "imagePullPolicy": "IfNotPresent",
                 "command": ["python3", "-m", "chaosdemo_local.standins.tidb_operator_sync", "--cluster", cluster,
                             "--namespace", namespace],
                 "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                     "allowPrivilegeEscalation": False}}]}}}},
    ]


async def install(api: client.ApiClient, namespace: str = "tidb-cluster", name: str = "basic", tikv: int = 3,
                  standin_image: str = "", time_scale: float = 1.0) -> None:
    """Create the CRD, namespace, TidbCluster, Services and StatefulSets (idempotent).

    With ``standin_image`` (the kind tier) the pods run the STAND-IN processes, and the
    status sync runs beside them.
    """
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
                  tidbcluster(name, tikv))
    tc = await custom.get_namespaced_custom_object("pingcap.com", "v1alpha1", namespace, "tidbclusters", name)
    for svc in (
        _service(name, "pd", f"{name}-pd", [("client", 2379)], False),
        _service(name, "pd", f"{name}-pd-peer", [("peer", 2380)], True),
        _service(name, "tikv", f"{name}-tikv-peer", [("peer", 20160)], True),
        _service(name, "tidb", f"{name}-tidb", [("mysql-client", 4000), ("status", 10080)], False),
        _service(name, "tidb", f"{name}-tidb-peer", [("status", 10080)], True),
    ):
        await _create(core.create_namespaced_service, namespace, svc)
    for component, replicas, port in (("pd", 1, 2379), ("tikv", tikv, 20160), ("tidb", 1, 4000)):
        standin = standin_container(name, namespace, component, standin_image, time_scale) if standin_image else None
        await _create(apps.create_namespaced_stateful_set, namespace,
                      statefulset(name, component, replicas, port, tc, standin))
    if standin_image:
        sa, role, binding, deploy = status_sync(name, namespace, standin_image)
        rbac = client.RbacAuthorizationV1Api(api)
        await _create(core.create_namespaced_service_account, namespace, sa)
        await _create(rbac.create_namespaced_role, namespace, role)
        await _create(rbac.create_namespaced_role_binding, namespace, binding)
        await _create(apps.create_namespaced_deployment, namespace, deploy)

"""A TidbCluster with ``spec.tlsCluster.enabled``: PD and each store's status port are read over TLS.

The client certificate is the cluster's own (``<cluster>-cluster-client-secret``, tidb-operator's name),
read with the least right that allows it: ``get`` on that Secret alone, granted by the chart's
``clusterTLS.clientSecrets``. No name comes from the ChaosDemo, so a demo can make the operator read no
other Secret. A cluster that needs TLS and cannot have it is refused in the preflight, saying what to do.
"""

from __future__ import annotations

import logging

from chaosdemo.api.errors import Forbidden, PreflightFailed
from chaosdemo.clients.tls import ClusterTLS, client_secret_name, tls_enabled
from chaosdemo.core.addresses import service_of
from chaosdemo.run.preflight import granted_tidbcluster
from chaosdemo.run.state import RunState

__all__ = ["GRANT_HINT", "secure"]

log = logging.getLogger(__name__)

GRANT_HINT = ("the chart grants the operator only the Secrets its value clusterTLS.clientSecrets names "
              "(helm upgrade ... --set clusterTLS.clientSecrets={{{name}}})")


async def secure(rs: RunState) -> ClusterTLS | None:
    """TLS for this demo's clients if its TidbCluster asks for it; PreflightFailed (ClusterTLS) if it cannot."""
    kube, ns, cluster = rs.deps.kube, rs.demo.cluster_ns, rs.demo.cluster
    if not tls_enabled(await granted_tidbcluster(kube, ns, cluster)):
        return None
    name = client_secret_name(cluster)
    needs = f"TidbCluster {ns}/{cluster} sets spec.tlsCluster.enabled, so PD and TiKV speak TLS only"
    try:
        secret = await kube.cluster.get_secret(ns, name)
    except Forbidden:
        raise PreflightFailed(f"{needs}, and the operator may not read its client certificate, Secret {ns}/{name}: "
                              + GRANT_HINT.format(name=name), reason="ClusterTLS") from None
    if secret is None:
        raise PreflightFailed(f"{needs}, and its client certificate, Secret {ns}/{name} (ca.crt, tls.crt, tls.key, "
                              "as tidb-operator expects it), does not exist", reason="ClusterTLS")
    try:
        tls = ClusterTLS.from_secret(f"{ns}/{name}", secret.get("data"))
    except ValueError as e:
        raise PreflightFailed(f"{needs}, and its client certificate cannot be used: {e}", reason="ClusterTLS") from None
    service = service_of(rs.pd_url, ns, rs.deps.settings.cluster_domain)
    rs.use_tls(tls, ClusterTLS.pd_name(service, ns) if service else None)
    log.info("%s/%s: PD and the stores' status ports over TLS, with the client certificate of Secret %s",
             ns, cluster, tls.source)
    return tls

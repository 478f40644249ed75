"""Certificates for a TLS TidbCluster, made by the tests, in the shape tidb-operator expects them.

tidb-operator's guide ("Enable TLS between TiDB Components") issues one CA, a server certificate per
component whose hosts are ``127.0.0.1``, ``::1``, ``<cluster>-<component>[.<ns>[.svc]]`` and
``*.<cluster>-<component>-peer[.<ns>[.svc]]``, and one client certificate shared by the components'
clients, in the Secret ``<cluster>-cluster-client-secret`` (``ca.crt``, ``tls.crt``, ``tls.key``). This
makes the same with openssl: throwaway keys for a test run, valid two days.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["client_secret", "make_cluster_pki", "server_hosts"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def server_hosts(cluster: str, namespace: str, component: str) -> list[str]:
    """The hosts tidb-operator's guide puts in a component's server certificate (the single-cluster form)."""
    names = [f"{cluster}-{component}", f"{cluster}-{component}-peer", f"*.{cluster}-{component}-peer"]
    return ["IP:127.0.0.1", "IP:::1"] + [f"DNS:{n}{rest}" for n in names
                                          for rest in ("", f".{namespace}", f".{namespace}.svc")]


def _issue(pki: Path, name: str, cn: str, ca: str, *, sans: list[str], usage: str) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={cn}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=pki)
    ext = [f"extendedKeyUsage={usage}"] + ([f"subjectAltName={','.join(sans)}"] if sans else [])
    (pki / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki)


def make_cluster_pki(pki: Path, cluster: str, namespace: str, *, ca: str = "ca") -> Path:
    """``<ca>.crt``, ``pd``/``tikv`` server pairs and a ``client`` pair signed by it, in ``pki``."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", f"/CN=chaosdemo test CA {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.crt", cwd=pki)
    for component in ("pd", "tikv"):
        _issue(pki, f"{ca}-{component}", "TiDB", ca, sans=server_hosts(cluster, namespace, component),
               usage="serverAuth,clientAuth")
    _issue(pki, f"{ca}-client", "TiDB", ca, sans=[], usage="clientAuth")
    return pki


def client_secret(pki: Path, cluster: str, namespace: str, *, ca: str = "ca") -> dict[str, Any]:
    """The client Secret tidb-operator expects, as a manifest."""
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": f"{cluster}-cluster-client-secret", "namespace": namespace},
            "data": {"ca.crt": b64(f"{ca}.crt"), "tls.crt": b64(f"{ca}-client.crt"),
                     "tls.key": b64(f"{ca}-client.key")}}

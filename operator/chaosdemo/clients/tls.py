"""TLS to a TidbCluster's PD and TiKV status ports, with the cluster's own CA and client certificate.

With ``spec.tlsCluster.enabled``, tidb-operator starts PD and TiKV with TLS only on their client and
status ports, and both ask for a client certificate signed by the cluster's CA (PD:
``pkg/utils/grpcutil/grpcutil.go``, ``RequireAndVerifyClientCert``; TiKV: ``src/server/status_server``).
The certificate its own clients use is in the Secret ``<cluster>-cluster-client-secret`` of the cluster's
namespace (``ca.crt``, ``tls.crt``, ``tls.key``; tidb-operator's ``util.ClusterClientTLSSecretName``).

Only that CA is trusted (never the system's), and each server is checked against the name tidb-operator's
documented certificates carry: ``<cluster>-pd.<namespace>.svc`` for PD's Service, and
``<pod>.<cluster>-tikv-peer.<namespace>.svc`` for a store (the ``.<clusterDomain>`` forms are added only
for clusters across Kubernetes clusters, so they cannot be relied on).
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any

__all__ = ["KEYS", "MAX_PEM", "ClusterTLS", "client_context", "client_secret_name", "tls_enabled"]

KEYS = ("ca.crt", "tls.crt", "tls.key")
MAX_PEM = 64 * 2**10  # a certificate chain or key far larger than any real one is refused, not parsed


def tls_enabled(tidbcluster: dict[str, Any] | None) -> bool:
    spec = (tidbcluster or {}).get("spec") or {}
    tls = spec.get("tlsCluster") if isinstance(spec, dict) else None
    return isinstance(tls, dict) and tls.get("enabled") is True


def client_secret_name(cluster: str) -> str:
    return f"{cluster}-cluster-client-secret"


def client_context(ca: bytes, cert: bytes, key: bytes) -> ssl.SSLContext:
    """A client context that trusts ``ca`` alone and presents ``cert``/``key``; ValueError says what is wrong."""
    try:
        ctx = ssl.create_default_context(cadata=ca.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"ca.crt is not a PEM certificate ({_why(e)})") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads a key pair only from files: a private directory (mode 0700), removed as soon as it is read.
    with tempfile.TemporaryDirectory(prefix="chaosdemo-tls-") as d:
        paths = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        for path, data in zip(paths, (cert, key), strict=True):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            ctx.load_cert_chain(*paths)
        except (ssl.SSLError, ValueError) as e:
            raise ValueError(f"tls.crt and tls.key are not a PEM certificate and its key ({_why(e)})") from None
    return ctx


def _why(e: Exception) -> str:
    return getattr(e, "reason", None) or type(e).__name__


@dataclass(frozen=True)
class ClusterTLS:
    """The client side of a TidbCluster's TLS: the context, and the Secret it was made from (for messages)."""

    context: ssl.SSLContext
    source: str  # "<namespace>/<name>" of the Secret

    @classmethod
    def from_secret(cls, source: str, data: object) -> ClusterTLS:
        """From a Secret's ``data`` (base64 values); ValueError names the key that is missing or wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"Secret {source} holds no data; it needs {', '.join(KEYS)}")
        pems: list[bytes] = []
        for key in KEYS:
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise ValueError(f"Secret {source} has no {key}; it needs {', '.join(KEYS)}")
            if len(value) > MAX_PEM * 4 // 3 + 4:
                raise ValueError(f"Secret {source}'s {key} is larger than {MAX_PEM} bytes")
            try:
                pems.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                raise ValueError(f"Secret {source}'s {key} is not base64") from None
        try:
            return cls(client_context(*pems), source)
        except ValueError as e:
            raise ValueError(f"Secret {source}: {e}") from None

    @staticmethod
    def pd_name(service: str, namespace: str) -> str:
        return f"{service}.{namespace}.svc"

    @staticmethod
    def store_name(pod: str, cluster: str, namespace: str) -> str:
        return f"{pod}.{cluster}-tikv-peer.{namespace}.svc"

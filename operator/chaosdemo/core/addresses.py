"""Names in the cluster's DNS, read and checked (pure): which Service a URL may reach, which pod a store is.

A user's ``pdURL`` may only name a Service of its cluster's own namespace; a PD store's address names the
TiKV pod behind it. Both are the same policy: a name is this cluster's only if it has this cluster's shape.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from chaosdemo.api.errors import PreflightFailed

__all__ = ["pd_member_pod", "pd_url", "pod_name_of_store", "service_of", "service_url", "tidb_address"]


def pd_url(template: str, domain: str, name: str, namespace: str, override: str = "") -> str:
    """PD's base URL: the operator's template (``Settings.pd_url_template``), or the spec's override, which must
    name a Service of the target namespace (``service_url``)."""
    if override:
        return service_url(override, namespace, domain)
    return template.format(name=name, namespace=namespace, domain=domain).rstrip("/")


def tidb_address(template: str, domain: str, name: str, namespace: str) -> tuple[str, int]:
    """TiDB's MySQL host and port for the SQL canary, from the operator's template (never from the spec)."""
    host, _, port = template.format(name=name, namespace=namespace, domain=domain).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"tidb_address_template gives no host:port: {template!r}")
    return host, int(port)


def pod_name_of_store(address: str, cluster: str, namespace: str) -> str | None:
    """The TiKV pod behind a PD store address, or None if it is not this cluster's."""
    pattern = (
        rf"^({re.escape(cluster)}-tikv-[0-9]+)\.{re.escape(cluster)}-tikv-peer"
        rf"\.{re.escape(namespace)}\.svc(\.[a-z0-9.-]+)?:20160$"
    )
    m = re.match(pattern, address)
    return m.group(1) if m else None


def pd_member_pod(member: str, cluster: str, namespace: str) -> str | None:
    """The PD pod a PD member name is, or None if it names no PD pod of this cluster.

    tidb-operator starts PD with ``--name=<pod>``, or, when the TidbCluster sets ``clusterDomain`` (or
    ``acrossK8s``), with ``--name=<pod>.<cluster>-pd-peer.<namespace>.svc.<domain>``
    (tidb-operator v1.6.6, ``pkg/manager/member/startscript/v2/pd_start_script.go``); PD's /health and
    /members report that name.
    """
    pattern = (rf"^({re.escape(cluster)}-pd-[0-9]+)(\.{re.escape(cluster)}-pd-peer\.{re.escape(namespace)}"
               rf"\.svc(\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?)?$")
    m = re.match(pattern, member)
    return m.group(1) if m else None


_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def service_url(url: str, namespace: str, domain: str = "cluster.local") -> str:
    """``url`` as the fully qualified URL of a Service of ``namespace``, or PreflightFailed (PDURLRefused).

    A user's pdURL may only name a Service of the cluster's own namespace:
    ``http(s)://<service>[.<namespace>[.svc[.cluster.local]]][:<port>]``. A bare
    name is resolved in that namespace, never in the operator's, and nothing
    else (no IP address, no other host, no path, no credentials) is fetched. The host returned is
    fully qualified, ``<service>.<namespace>.svc.<domain>.``: no DNS search domain is tried first.
    """
    refuse = PreflightFailed(
        f"spec.cluster.pdURL {url!r} must name a Service of namespace {namespace}, as "
        f"http://<service>[.{namespace}[.svc]]:<port>; the operator fetches nothing else", reason="PDURLRefused")
    try:
        u = urlsplit(url.strip())
        port = u.port
    except ValueError as e:
        raise refuse from e
    if u.scheme not in ("http", "https") or u.username or u.password or u.query or u.fragment:
        raise refuse
    if u.path not in ("", "/") or not u.hostname:
        raise refuse
    labels = u.hostname.split(".")
    service, rest = labels[0], labels[1:]
    if not _LABEL.match(service) or rest not in ([], [namespace], [namespace, "svc"],
                                                  [namespace, "svc", "cluster", "local"]):
        raise refuse
    return f"{u.scheme}://{service}.{namespace}.svc.{domain}." + (f":{port}" if port else "")


def service_of(url: str, namespace: str, domain: str) -> str:
    """The name of the Service of ``namespace`` that ``url`` reaches (``<service>.<namespace>.svc[.<domain>][.]``),
    or '' when it names no Service (an operator's template pointing elsewhere, such as the local tier's)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""
    for suffix in (f".{namespace}.svc.{domain}", f".{namespace}.svc"):
        if host.endswith(suffix) and _LABEL.match(host[: -len(suffix)]):
            return host[: -len(suffix)]
    return ""

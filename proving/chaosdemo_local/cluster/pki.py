"""The local control plane's files: its certificates, admin kubeconfig, audit policy, and the audit log read
back (who deleted which pod, and when), and the Node objects kwok's nodes are registered with."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["ADMIN_TOKEN", "KWOK_ANNOTATION", "audit_policy", "deletions", "kubeconfig", "make_pki", "node_manifest"]

ADMIN_TOKEN = "chaosdemo-local-admin-token"  # a throwaway cluster on loopback, made per run
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(workdir: Path) -> Path:
    """A CA, the API server's certificate, the service-account key pair and the admin token file."""
    pki = workdir / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=chaosdemo-local-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=pki)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
             "-keyout", "apiserver.key", "-out", "apiserver.csr", cwd=pki)
    (pki / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,IP:10.96.0.1\n"
    )
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "apiserver.crt", cwd=pki)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    (pki / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n')
    return pki


def kubeconfig(name: str, server: str, pki: Path) -> str:
    """The admin's kubeconfig for this cluster, as JSON (which kubectl reads as YAML)."""
    ca = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "admin"}}],
        "current-context": name,
    }, indent=1)


def audit_policy(workdir: Path) -> Path:
    """Metadata of every pod deletion, nothing else."""
    path = workdir / "audit-policy.yaml"
    path.write_text(json.dumps({
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "verbs": ["delete", "deletecollection"],
                   "resources": [{"group": "", "resources": ["pods"]}]}, {"level": "None"}]}))
    return path


def deletions(audit_log: Path, namespace: str, prefix: str = "") -> list[dict[str, str]]:
    """Pod deletions the API server carried out, from its audit log: name, user agent, when the
    request reached it (``received``) and when it was done (``at``), to the microsecond."""
    out: list[dict[str, str]] = []
    if not audit_log.exists():
        return out
    for line in audit_log.read_text().splitlines():
        ev = json.loads(line)
        ref = ev.get("objectRef") or {}
        if (ev.get("stage") == "ResponseComplete" and ref.get("namespace") == namespace
                and ref.get("name", "").startswith(prefix) and (ev.get("responseStatus") or {}).get("code") == 200):
            out.append({"name": ref["name"], "userAgent": ev.get("userAgent", ""),
                        "received": ev.get("requestReceivedTimestamp", ""), "at": ev.get("stageTimestamp", "")})
    return out


def node_manifest(node: str, control: bool) -> dict[str, Any]:
    """A Node object as kind names and labels its nodes, for kwok to keep Ready."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node,
            "annotations": {KWOK_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": node,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **({"node-role.kubernetes.io/control-plane": ""} if control else {}),
            },
        },
        "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}
        if control else {},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
    }

"""Start and stop a real Kubernetes control plane on this machine, from local binaries.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real
programs, built from Go modules by ``hack/build-control-plane.sh``; kwok fakes
the kubelets of nodes named as kind names them (``<name>-worker``,
``<name>-worker2``, ...). Every cluster gets free ports, its own work directory
and kubeconfig, and ``stop()`` ends every process it started.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from chaosdemo_local.cluster.admin import request
from chaosdemo_local.cluster.docker_nodes import NodeContainers, build_node_image
from chaosdemo_local.cluster.pki import KWOK_ANNOTATION, audit_policy, kubeconfig, make_pki, node_manifest
from chaosdemo_local.cluster.pki import deletions as audited_deletions
from chaosdemo_local.cluster.supervisor import ControlPlaneError, Supervisor

OWN_STAGES = Path(__file__).resolve().parents[1] / "stages"  # chaosdemo_local/stages

__all__ = ["ControlPlaneError", "LocalCluster", "find_binaries", "free_port"]


def checkout() -> Path:
    """The repository the tiers build from (hack/, deploy/, crds/, the Dockerfile): ``$CHAOSDEMO_REPO``, else
    the checkout this package is installed from (``pip install -e proving``), else the working directory."""
    here = Path(__file__).resolve().parents[3]  # proving/chaosdemo_local/cluster/ -> the repository
    for candidate in (os.environ.get("CHAOSDEMO_REPO"), here, Path.cwd()):
        if candidate and (Path(candidate) / "hack" / "build-control-plane.sh").is_file():
            return Path(candidate)
    return here  # what is missing is named where it is first needed


REPO = checkout()
BUILD_SCRIPT = REPO / "hack" / "build-control-plane.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binaries(build: bool = True) -> Path:
    """The bin directory of the cached control plane; builds it first if asked and needed."""
    env_dir = os.environ.get("CHAOSDEMO_CONTROL_PLANE_BIN")
    if env_dir:
        return Path(env_dir)
    if not build:
        raise ControlPlaneError("CHAOSDEMO_CONTROL_PLANE_BIN is not set and building is off")
    out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as resp:
        return bool(resp.status == 200)


@dataclass
class LocalCluster:
    name: str
    workdir: Path
    bin_dir: Path
    workers: int = 3
    node_monitor_grace_seconds: int = 10
    api_port: int = 0
    docker_host: str | None = None  # back each worker with a Docker container running its kwok
    node_lease_seconds: int = 4
    node_containers: NodeContainers | None = None
    started_in: float = 0.0

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(self.workdir / "logs", self.bin_dir)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: every pod deletion, and who asked for it (user agent)."""
        return self.workdir / "logs" / "audit.jsonl"

    def worker_names(self) -> list[str]:
        return [f"{self.name}-worker" + (str(i) if i > 1 else "") for i in range(1, self.workers + 1)]

    def deletions(self, namespace: str, prefix: str = "") -> list[dict[str, str]]:
        return audited_deletions(self.audit_log, namespace, prefix)

    def operator_deletions(self, namespace: str, prefix: str = "") -> list[dict[str, str]]:
        """The deletions the operator asked for: the audit log names each client by its user agent, and
        the operator names itself (``chaosdemo-operator/<version>``); the StatefulSet controller, kwok,
        kubectl and any other program on the operator's client library have their own."""
        return [d for d in self.deletions(namespace, prefix) if d["userAgent"].startswith("chaosdemo-operator/")]

    def restart(self, name: str, down_seconds: float) -> None:
        """Stop one control-plane process, keep it down, start it with the same flags, wait for it."""
        self.supervisor.restart(name, down_seconds)
        if name == "kube-apiserver":
            self._wait_ready()

    def api(self, path: str, method: str = "GET", body: object | None = None,
            retry_for: float = 30) -> dict:  # type: ignore[type-arg]
        """One request to the API server as its admin (``admin.request``)."""
        return request(self.server, self.workdir / "pki" / "ca.crt", path, method, body, retry_for=retry_for)

    def start(self) -> LocalCluster:
        t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = make_pki(self.workdir)
        self.api_port = free_port()
        self.kubeconfig.write_text(kubeconfig(self.name, self.server, pki))
        self._start_apiserver(pki, self._start_etcd())
        self._start_controllers(pki)
        stages = [*sorted((self.bin_dir.parent / "stages").glob("*.yaml")), *sorted(OWN_STAGES.glob("*.yaml"))]
        self._start_kwok(stages)
        for node, control in [(f"{self.name}-control-plane", True), *((w, False) for w in self.worker_names())]:
            self.api("/api/v1/nodes", "POST", node_manifest(node, control))
        self.supervisor.wait("nodes Ready", self._nodes_ready, timeout=60)
        self.supervisor.wait("ServiceAccount default/default", lambda: bool(self.api(
            "/api/v1/namespaces/default/serviceaccounts/default").get("metadata")), timeout=60)
        self.started_in = time.monotonic() - t0
        return self

    def _start_etcd(self) -> str:
        etcd_url, peer_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        self.supervisor.spawn(
            "etcd", "etcd", f"--data-dir={self.workdir / 'etcd'}", f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}", f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}", f"--initial-cluster=default={peer_url}",
            "--unsafe-no-fsync=true", "--quota-backend-bytes=1073741824", "--log-level=warn")
        self.supervisor.wait("etcd", lambda: _http_ok(etcd_url + "/health"))
        return etcd_url

    def _start_apiserver(self, pki: Path, etcd_url: str) -> None:
        self.supervisor.spawn(
            "kube-apiserver", "kube-apiserver", f"--etcd-servers={etcd_url}", f"--secure-port={self.api_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}", f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true", "--profiling=false",
            f"--cert-dir={pki}", f"--audit-policy-file={audit_policy(self.workdir)}",
            f"--audit-log-path={self.audit_log}", "--audit-log-format=json",
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        self.supervisor.wait("kube-apiserver /readyz", lambda: self.api("/readyz").get("raw") == "ok", timeout=90)

    def _start_controllers(self, pki: Path) -> None:
        kubeconfig = str(self.kubeconfig)
        self.supervisor.spawn(
            "kube-controller-manager", "kube-controller-manager", f"--kubeconfig={kubeconfig}",
            "--leader-elect=false", "--secure-port=0", "--controllers=*", "--use-service-account-credentials=false",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--node-monitor-grace-period={self.node_monitor_grace_seconds}s",
            "--node-monitor-period=1s", "--concurrent-statefulset-syncs=5")
        self.supervisor.spawn("kube-scheduler", "kube-scheduler", f"--kubeconfig={kubeconfig}",
                              "--leader-elect=false", "--secure-port=0")

    def _start_kwok(self, stages: list[Path]) -> None:
        """kwok for the nodes: one on the host for them all, or one per Docker node container."""
        manage = (f"--manage-single-node={self.name}-control-plane" if self.docker_host
                  else f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake")
        self.supervisor.spawn(
            "kwok", "kwok", f"--kubeconfig={self.kubeconfig}", manage, "--cidr=10.244.0.0/24", "--node-ip=10.89.0.1",
            f"--node-lease-duration-seconds={self.node_lease_seconds}", f"--server-address=127.0.0.1:{free_port()}",
            *(f"--config={p}" for p in stages))
        if self.docker_host:
            image = build_node_image(self.docker_host, self.bin_dir / "kwok")
            self.node_containers = NodeContainers(self.docker_host, self.name, image, self.kubeconfig, stages)
            workers = self.worker_names()
            self.node_containers.start(workers, self.node_lease_seconds, {w: free_port() for w in workers})

    def _nodes_ready(self) -> bool:
        items = self.api("/api/v1/nodes").get("items", [])
        ready = [
            n for n in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        ]
        return len(ready) == self.workers + 1

    def stop(self) -> None:
        if self.node_containers is not None:
            self.node_containers.remove()
        # Clients first, then the API server, then etcd: an API server whose etcd is gone hangs in its
        # graceful shutdown until SIGKILLed (measured: over 30 s, against about 1 s in this order).
        self.supervisor.stop(last=("kube-apiserver", "etcd"))

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

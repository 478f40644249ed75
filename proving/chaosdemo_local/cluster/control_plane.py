"""Start and stop a real Kubernetes control plane on this machine, from local binaries.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real
programs, built from Go modules by ``hack/build-control-plane.sh``; kwok fakes
the kubelets of nodes named as kind names them (``<name>-worker``,
``<name>-worker2``, ...). Every cluster gets free ports, its own work directory
and kubeconfig, and ``stop()`` ends every process it started.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from chaosdemo_local.cluster.docker_nodes import NodeContainers, build_node_image
from chaosdemo_local.reaper import die_with_parent, marked_env

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
ADMIN_TOKEN = "chaosdemo-local-admin-token"  # a throwaway cluster on loopback, made per run
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


class ControlPlaneError(RuntimeError):
    pass


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


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _reap(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Wait for a process group already sent SIGTERM; SIGKILL it after ``grace`` seconds."""
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class LocalCluster:
    name: str
    workdir: Path
    bin_dir: Path
    workers: int = 3
    node_monitor_grace_seconds: int = 10
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    argv: dict[str, tuple[str, ...]] = field(default_factory=dict)  # how each was started, for restart()
    api_port: int = 0
    docker_host: str | None = None  # back each worker with a Docker container running its kwok
    node_lease_seconds: int = 4
    node_containers: NodeContainers | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def worker_names(self) -> list[str]:
        return [f"{self.name}-worker" + (str(i) if i > 1 else "") for i in range(1, self.workers + 1)]

    # ------------------------------------------------------------ files

    def _pki(self) -> Path:
        pki = self.workdir / "pki"
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

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: every pod deletion, and who asked for it (user agent)."""
        return self.workdir / "logs" / "audit.jsonl"

    def _audit_policy(self) -> Path:
        path = self.workdir / "audit-policy.yaml"
        path.write_text(json.dumps({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata", "verbs": ["delete", "deletecollection"],
                       "resources": [{"group": "", "resources": ["pods"]}]}, {"level": "None"}]}))
        return path

    def deletions(self, namespace: str, prefix: str = "") -> list[dict[str, str]]:
        """Pod deletions the API server carried out, from its audit log: name, user agent, when the
        request reached it (``received``) and when it was done (``at``), to the microsecond."""
        out = []
        if not self.audit_log.exists():
            return out
        for line in self.audit_log.read_text().splitlines():
            ev = json.loads(line)
            ref = ev.get("objectRef") or {}
            if (ev.get("stage") == "ResponseComplete" and ref.get("namespace") == namespace
                    and ref.get("name", "").startswith(prefix) and (ev.get("responseStatus") or {}).get("code") == 200):
                out.append({"name": ref["name"], "userAgent": ev.get("userAgent", ""),
                            "received": ev.get("requestReceivedTimestamp", ""), "at": ev.get("stageTimestamp", "")})
        return out

    def operator_deletions(self, namespace: str, prefix: str = "") -> list[dict[str, str]]:
        """The deletions the operator asked for: the audit log names each client by its user agent, and
        the operator names itself (``chaosdemo-operator/<version>``); the StatefulSet controller, kwok,
        kubectl and any other program on the operator's client library have their own."""
        return [d for d in self.deletions(namespace, prefix) if d["userAgent"].startswith("chaosdemo-operator/")]

    def _write_kubeconfig(self, pki: Path) -> None:
        ca = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": "admin"}}],
            "current-context": self.name,
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=1))

    # ------------------------------------------------------------ processes

    def _spawn(self, name: str, *args: str) -> None:
        self.argv[name] = args
        logdir = self.workdir / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        with open(logdir / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                [str(self.bin_dir / args[0]), *args[1:]], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=marked_env(), preexec_fn=die_with_parent,
            )

    def restart(self, name: str, down_seconds: float) -> None:
        """Stop one control-plane process, keep it down, start it with the same flags, wait for it.

        SIGTERM first, as the kubelet stops a static pod; SIGKILL after 10 s (kube-apiserver keeps
        open watches until they end).
        """
        proc = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        _reap(proc, grace=10)
        time.sleep(down_seconds)
        self._spawn(name, *self.argv[name])
        if name == "kube-apiserver":
            self._wait("kube-apiserver /readyz", lambda: self.api("/readyz").get("raw") == "ok", timeout=90)

    def _wait(self, what: str, check: object, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            for pname, proc in self.processes.items():
                if proc.poll() is not None:
                    tail = (self.workdir / "logs" / f"{pname}.log").read_text(errors="replace")[-2000:]
                    raise ControlPlaneError(f"{pname} exited with {proc.returncode} while waiting for {what}:\n{tail}")
            try:
                if check():  # type: ignore[operator]
                    return
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last = e
            time.sleep(0.2)
        raise ControlPlaneError(f"timed out after {timeout}s waiting for {what}: {last!r}")

    def _open(self, path: str, method: str = "GET", body: object | None = None,
              timeout: float = 5) -> http.client.HTTPResponse:
        """A request to the API server as its admin, over HTTPS, without a kubectl process."""
        ctx = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method, headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
        return urllib.request.urlopen(req, context=ctx, timeout=timeout)  # type: ignore[no-any-return]

    def api(self, path: str, method: str = "GET", body: object | None = None,
            retry_for: float = 30) -> dict:  # type: ignore[type-arg]
        """One request to the API server: its JSON answer, or ``{"raw": text}``.

        A 429 (the API server's "try again in a second", as for a new CRD's storage) is retried after the
        delay it asks for, as kubectl does, for up to ``retry_for`` seconds; any other error is raised.
        """
        deadline = time.monotonic() + retry_for
        while True:
            try:
                with self._open(path, method, body) as resp:
                    text = resp.read().decode()
                return json.loads(text) if text.startswith("{") else {"raw": text}
            except urllib.error.HTTPError as e:
                with e:  # an HTTPError holds the connection open until closed
                    detail = e.read()[:300]
                    wait = float(e.headers.get("Retry-After") or 1)
                if e.code != 429 or time.monotonic() + wait > deadline:
                    raise ControlPlaneError(f"{method} {path}: HTTP {e.code} {detail!r}") from None
                time.sleep(wait)

    def start(self) -> LocalCluster:
        t0 = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = self._pki()
        etcd_port, peer_port = free_port(), free_port()
        self.api_port = free_port()
        self._write_kubeconfig(pki)
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        self._spawn("etcd", "etcd", f"--data-dir={self.workdir / 'etcd'}", f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}", f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}", f"--initial-cluster=default={peer_url}",
                    "--unsafe-no-fsync=true", "--quota-backend-bytes=1073741824", "--log-level=warn")
        self._wait("etcd", lambda: _http_ok(etcd_url + "/health"))
        self._spawn(
            "kube-apiserver", "kube-apiserver", f"--etcd-servers={etcd_url}", f"--secure-port={self.api_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}", f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true", "--profiling=false",
            f"--cert-dir={pki}", f"--audit-policy-file={self._audit_policy()}",
            f"--audit-log-path={self.audit_log}", "--audit-log-format=json",
        )
        self._wait("kube-apiserver /readyz", lambda: self.api("/readyz").get("raw") == "ok", timeout=90)
        kubeconfig = str(self.kubeconfig)
        self._spawn("kube-controller-manager", "kube-controller-manager", f"--kubeconfig={kubeconfig}",
                    "--leader-elect=false", "--secure-port=0", "--controllers=*",
                    "--use-service-account-credentials=false",
                    f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
                    f"--node-monitor-grace-period={self.node_monitor_grace_seconds}s",
                    "--node-monitor-period=1s", "--concurrent-statefulset-syncs=5")
        self._spawn("kube-scheduler", "kube-scheduler", f"--kubeconfig={kubeconfig}", "--leader-elect=false",
                    "--secure-port=0")
        stages = [*sorted((self.bin_dir.parent / "stages").glob("*.yaml")), *sorted(OWN_STAGES.glob("*.yaml"))]
        configs = [f"--config={p}" for p in stages]
        control_plane = f"{self.name}-control-plane"
        manage = (f"--manage-single-node={control_plane}" if self.docker_host
                  else f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake")
        self._spawn("kwok", "kwok", f"--kubeconfig={kubeconfig}", manage, "--cidr=10.244.0.0/24",
                    "--node-ip=10.89.0.1", f"--node-lease-duration-seconds={self.node_lease_seconds}",
                    f"--server-address=127.0.0.1:{free_port()}", *configs)
        if self.docker_host:
            image = build_node_image(self.docker_host, self.bin_dir / "kwok")
            self.node_containers = NodeContainers(self.docker_host, self.name, image, self.kubeconfig, stages)
            workers = self.worker_names()
            self.node_containers.start(workers, self.node_lease_seconds, {w: free_port() for w in workers})
        self._create_nodes()
        self._wait("nodes Ready", self._nodes_ready, timeout=60)
        self._wait("ServiceAccount default/default", lambda: bool(self.api(
            "/api/v1/namespaces/default/serviceaccounts/default").get("metadata")), timeout=60)
        self.started_in = time.monotonic() - t0
        return self

    def _create_nodes(self) -> None:
        nodes = [(f"{self.name}-control-plane", True), *((w, False) for w in self.worker_names())]
        for node, control in nodes:
            body = {
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
            self.api("/api/v1/nodes", "POST", body)

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
        last = ("kube-apiserver", "etcd")
        for stage in ([n for n in self.processes if n not in last], *([n] for n in last)):
            for pname in stage:
                proc = self.processes.get(pname)
                if proc is not None and proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM)
            for pname in stage:
                if pname in self.processes:
                    _reap(self.processes[pname], grace=10)
        self.processes.clear()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

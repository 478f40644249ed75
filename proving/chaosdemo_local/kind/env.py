"""The kind tier, here: a real kind cluster from the project's kind-config.yaml, with images built here.

``KindEnv`` is what ``tests/e2e`` and ``make demo-kind`` stand on where no
registry can be reached:

1. a Docker engine: the one ``DOCKER_HOST`` names if it answers, else our own
   dockerd with a bridge network and iptables (kind needs both), its images
   cached under ``~/.cache/chaosdemo/kind-docker``; where the capability
   bounding set lacks CAP_SYS_RESOURCE it runs containers through
   ``hack/kind/runc-without-sys-resource``;
2. kind, the Kubernetes node binaries and a node image, all built here
   (``hack/build-kind-tier.sh``, ``hack/kind/build-node-image.sh``);
3. ``kind create cluster`` with kind-config.yaml plus only what this host
   needs (``hack/kind/cluster-config.py`` says what and why);
4. the real tidb-operator v1.6.6 (built from its Go module by
   ``hack/build-tidb-operator.sh``), installed as its documentation says: its
   CRDs from ``manifests/crd.yaml`` and its own Helm chart, with only the image
   overridden;
5. ``deploy/tidb-cluster.yaml`` as users apply it, but for its images: PD,
   TiKV and TiDB are STAND-IN images (``images.component_images``) that
   tidb-operator starts with the scripts and flags it writes for the real ones;
6. the operator from its real Dockerfile and Helm chart, Docker socket on.

``stop()`` removes the cluster, its network and the dockerd, on every way out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosdemo_local.cluster.docker_nodes import Dockerd, docker_cli
from chaosdemo_local.kind.images import REPO
from chaosdemo_local.kind.steps import (
    TIDB_NS,
    TIDB_OPERATOR_VERSION,
    TOOLS,
    Unsupported,
    build_and_load_images,
    check_privileged,
    create_cluster,
    export_logs,
    install_operator_chart,
    install_tidb_operator,
    kind_config,
    remove_cluster,
    sh,
    start_engine,
    tidb_cluster_manifest,
    tidb_health,
    tidb_operator_said,
)
from chaosdemo_local.reaper import stop_on_signals

__all__ = ["KindEnv", "Unsupported", "timings_table"]

def timings_table(timings: list[tuple[str, float]]) -> str:
    width = max((len(n) for n, _ in timings), default=10)
    return "\n".join(f"  {name:<{width}}  {secs:7.1f}s" for name, secs in timings)


@dataclass
class KindEnv:
    workdir: Path
    name: str = "chaosdemo-e2e"
    progress: Callable[[str], None] = lambda msg: print(f"[kind] {msg}", file=sys.stderr, flush=True)
    timings: list[tuple[str, float]] = field(default_factory=list)
    dockerd: Dockerd | None = None
    host: str = ""
    node_image: str = ""
    kubeconfig: Path = field(init=False)
    bins: dict[str, Path] = field(default_factory=dict)
    cluster: Any = None  # pytest_kind.KindCluster
    components: dict[str, str] = field(default_factory=dict)  # role -> STAND-IN image tidb-operator runs
    tidb_operator: Path | None = None  # the build: bin/, charts/tidb-operator, manifests/crd.yaml
    tidb_operator_image: str = ""
    operator_values: dict[str, str] = field(default_factory=dict)  # more of the chart's values (--set)

    def __post_init__(self) -> None:
        self.kubeconfig = self.workdir / "kubeconfig"

    # ------------------------------------------------------------ plumbing

    def _step(self, name: str, fn: Callable[[], Any]) -> Any:
        self.progress(f"{name} ...")
        t0 = time.monotonic()
        out = fn()
        self.timings.append((name, time.monotonic() - t0))
        self.progress(f"{name}: {self.timings[-1][1]:.1f}s")
        return out

    @property
    def env(self) -> dict[str, str]:
        path = os.pathsep.join(str(p) for p in (self.bins.get("kind-tier"), self.bins.get("control-plane")) if p)
        return {**os.environ, "DOCKER_HOST": self.host, "KUBECONFIG": str(self.kubeconfig),
                "PATH": f"{path}{os.pathsep}{os.environ.get('PATH', '')}"}

    def kind(self, *args: str, timeout: float = 1800) -> str:
        return sh(str(self.bins["kind-tier"] / "kind"), *args, env=self.env, timeout=timeout)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bins["control-plane"] / "kubectl"), *args], capture_output=True, text=True,
                              env=self.env, input=input, check=check, timeout=300)

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def api(self, path: str) -> Any:
        """A GET of an API server path (``kubectl get --raw``)."""
        return json.loads(self.kubectl("get", "--raw", path).stdout)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return docker_cli(self.host, *args, check=check)

    # ------------------------------------------------------------ start

    def start(self) -> KindEnv:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._step("Docker engine", self._engine)
            for what, key, script in TOOLS:
                self.bins[key] = Path(self._step(what, lambda script=script: sh("bash", script)).splitlines()[-1])
            self.tidb_operator = Path(self._step(f"tidb-operator {TIDB_OPERATOR_VERSION} from its module", lambda: sh(
                "bash", "hack/build-tidb-operator.sh",
                env={**os.environ, "TIDB_OPERATOR_VERSION": TIDB_OPERATOR_VERSION})).splitlines()[-1])
            self.node_image = self._step("node image", lambda: sh(
                "bash", "hack/kind/build-node-image.sh", env=self.env)).splitlines()[-1]
            self._step("kind create cluster", self._create)
            self._step("images built and loaded", self._images)
            self._step("tidb-operator ready", self._install_tidb_operator)
            self._step("TidbCluster healthy (PD, TiKV, TiDB stand-ins)", self._tidb)
            self._step("operator chart ready", self._operator)
        except BaseException:
            self.stop()
            raise
        return self

    def _engine(self) -> None:
        self.dockerd = start_engine(self.workdir, self.progress)
        self.host = self.dockerd.host
        check_privileged(self.host, self.workdir)
        # A cluster an earlier, killed run left in this engine goes first.
        if self.name in self.docker("ps", "-a", "--format", "{{.Label \"io.x-k8s.kind.cluster\"}}").stdout.decode():
            self.progress(f"removing the kind cluster {self.name} an earlier run left behind")
            self._remove_cluster()

    def _create(self) -> None:
        (self.workdir / "kind-config.yaml").write_text(kind_config(self.name, self.host, self.bins))
        os.environ.update({k: self.env[k] for k in ("DOCKER_HOST", "PATH")})
        self.cluster = create_cluster(self.name, self.workdir / "kind-config.yaml", self.kubeconfig, self.node_image,
                                      self.bins, self.kubectl, self._export_logs)

    def _images(self) -> None:
        assert self.tidb_operator is not None
        self.components, self.tidb_operator_image = build_and_load_images(
            self.kind, self.name, self.host, self.bins["control-plane"] / "etcd", self.tidb_operator, self.progress)

    def _install_tidb_operator(self) -> None:
        assert self.tidb_operator is not None
        install_tidb_operator(self.kubectl, self.bins["helm"], self.tidb_operator, self.tidb_operator_image, self.env)

    def tidb_cluster(self) -> dict[str, Any]:
        return tidb_cluster_manifest(self.components)

    def _tidb(self) -> None:
        self.kubectl("create", "namespace", TIDB_NS)
        self.kubectl("apply", "-n", TIDB_NS, "-f", "-", input=yaml.safe_dump(self.tidb_cluster()))
        self.wait_healthy(timeout=420)

    def _operator(self) -> None:
        install_operator_chart(self.bins["helm"], self.host, self.operator_values, self.env)

    # ------------------------------------------------------------ health

    def healthy(self) -> tuple[bool, str]:
        return tidb_health(self.kubectl)

    def wait_healthy(self, timeout: float = 300) -> None:
        deadline, why = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            ok, why = self.healthy()
            if ok:
                return
            time.sleep(2)
        raise RuntimeError(f"the TidbCluster did not become healthy in {timeout:.0f}s: {why}\n"
                           f"{tidb_operator_said(self.kubectl)}")

    # ------------------------------------------------------------ stop

    def _export_logs(self) -> None:
        export_logs(self.kind, self.name, self.workdir / "kind-logs", self.progress)

    def _remove_cluster(self) -> None:
        remove_cluster(self.kind if "kind-tier" in self.bins else None, self.host, self.name, self.progress)

    def stop(self) -> None:
        """Remove the cluster, its network and our dockerd; each step's time goes in the timings table."""
        if self.host:
            self._step("cluster removed", self._remove_cluster)
        if self.dockerd is not None:
            self._step("Docker engine stopped", self.dockerd.stop)
            self.dockerd = None

    def __enter__(self) -> KindEnv:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_kind_demo(action: str = "pod-delete", keep: bool = False) -> int:
    """`make demo-kind` where no registry can be reached: the whole story on a real kind cluster built here."""
    import tempfile

    stop_on_signals()
    sample = REPO / "deploy" / "samples" / ("chaosdemo.yaml" if action == "pod-delete" else f"{action}.yaml")
    env = KindEnv(Path(tempfile.mkdtemp(prefix="chaosdemo-kind-")), name=os.environ.get("KIND_CLUSTER", "chaosdemo"))
    print("kind tier, offline: kind, the node image, tidb-operator v1.6.6, the operator image and the PD/TiKV/TiDB\n"
          "STAND-INS are built here; the cluster (kubelets, containerd, kube-proxy, CoreDNS) and tidb-operator are\n"
          "real. First run: about 30 min on 2 cores (then cached).")
    phase = ""
    try:
        env.start()
        print(f"\n==> kubectl apply -f {sample.relative_to(REPO)}; kubectl get chaosdemos -n tidb-cluster -w\n")
        name = env.kubectl("create", "--dry-run=client", "-f", str(sample), "-o", "jsonpath={.metadata.name}").stdout
        env.kubectl("apply", "-f", str(sample))
        watch = subprocess.Popen([str(env.bins["control-plane"] / "kubectl"), "get", "chaosdemos", "-n",
                                  "tidb-cluster", "-w"], env=env.env)
        try:
            while phase not in ("Succeeded", "Failed", "Aborted"):
                time.sleep(2)
                phase = env.kubectl("get", "chaosdemo", name, "-n", "tidb-cluster", "-o",
                                    "jsonpath={.status.phase}").stdout
        finally:
            watch.terminate()
        print("\n==> diagnosis")
        print(json.dumps(env.kubectl_json("get", "chaosdemo", name, "-n", "tidb-cluster")["status"].get("diagnosis"),
                         indent=2))
        print("\n==> timings\n" + timings_table(env.timings))
        if keep:
            print(f"\nkept: KUBECONFIG={env.kubeconfig} DOCKER_HOST={env.host} (Ctrl-C removes it)")
            while True:
                time.sleep(3600)
    except Unsupported as e:
        print(f"the kind tier cannot run on this machine: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: removing the kind cluster", file=sys.stderr)
    finally:
        env.stop()
        shutil.rmtree(env.workdir, ignore_errors=True)
    return 0 if phase == "Succeeded" else 1

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

from chaosdemo_local.cluster.docker_nodes import CACHE, Dockerd, docker_cli
from chaosdemo_local.kind.images import REPO, component_images, operator_image, tidb_operator_image
from chaosdemo_local.reaper import reap_leftovers, stop_on_signals

__all__ = ["KindEnv", "Unsupported", "timings_table"]

LOCAL_REPO = "local.chaosdemo.dev"
OPERATOR_IMAGE = "chaosdemo-operator:kind-e2e"
TIDB_OPERATOR_VERSION = "v1.6.6"
TIDB_NS, TIDB_ADMIN_NS = "tidb-cluster", "tidb-admin"


class Unsupported(RuntimeError):
    """This machine cannot run the kind tier (the reason says why); the suite is skipped, never hung."""


def _sh(*args: str, env: dict[str, str] | None = None, timeout: float = 1800, cwd: Path = REPO) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed ({done.returncode}):\n{done.stdout[-1500:]}\n"
                           f"{done.stderr[-3000:]}")
    return done.stdout


def _lacks_sys_resource() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return not (int(line.split()[1], 16) >> 24) & 1
    return False


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
        return _sh(str(self.bins["kind-tier"] / "kind"), *args, env=self.env, timeout=timeout)

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
            self.bins["control-plane"] = Path(self._step(
                "control plane binaries", lambda: _sh("bash", "hack/build-control-plane.sh")).splitlines()[-1])
            self.bins["kind-tier"] = Path(self._step(
                "kind and node binaries", lambda: _sh("bash", "hack/build-kind-tier.sh")).splitlines()[-1])
            self.bins["helm"] = Path(self._step(  # the binary itself, not its folder
                "helm", lambda: _sh("bash", "hack/build-helm.sh")).splitlines()[-1])
            self.tidb_operator = Path(self._step(f"tidb-operator {TIDB_OPERATOR_VERSION} from its module", lambda: _sh(
                "bash", "hack/build-tidb-operator.sh",
                env={**os.environ, "TIDB_OPERATOR_VERSION": TIDB_OPERATOR_VERSION})).splitlines()[-1])
            self.node_image = self._step("node image", lambda: _sh(
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
        if shutil.which("docker") is None:
            raise Unsupported("no docker CLI on this machine")
        extra: list[str] = []
        if _lacks_sys_resource() and not os.environ.get("DOCKER_HOST"):
            wrapper = REPO / "hack" / "kind" / "runc-without-sys-resource"
            extra = ["--add-runtime", f"chaosdemo-runc={wrapper}", "--default-runtime", "chaosdemo-runc"]
            self.progress("CAP_SYS_RESOURCE is missing from the bounding set: containers run through "
                          f"{wrapper.name}")
        # A dockerd (and its nodes' shims) that a killed run left on our data root holds its lock: it goes.
        # One that another run still uses stays, and ours then fails to start, saying so.
        reap_leftovers(log=self.progress)
        # A user's engine (DOCKER_HOST, or the default socket) comes first; else one of ours. Ours needs no
        # default bridge (kind makes its own network) and caches its images across runs.
        self.dockerd = Dockerd(self.workdir / "dockerd", network=["--bridge=none"], data_root=CACHE / "kind-docker",
                               extra=extra, also_try=("unix:///var/run/docker.sock",))
        try:
            self.dockerd.start()
        except RuntimeError as e:
            raise Unsupported(f"no Docker engine could be started (is another kind-tier run using "
                              f"{CACHE / 'kind-docker'}?): {str(e)[-300:]}") from e
        self.host = self.dockerd.host
        probe = self.docker("run", "--rm", "--privileged", "--entrypoint", "true", self._probe_image(), check=False)
        if probe.returncode != 0:
            raise Unsupported(f"this Docker engine cannot run privileged containers, which kind nodes are: "
                              f"{probe.stderr.decode(errors='replace')[-300:]}")
        # A cluster an earlier, killed run left in this engine goes first.
        if self.name in self.docker("ps", "-a", "--format", "{{.Label \"io.x-k8s.kind.cluster\"}}").stdout.decode():
            self.progress(f"removing the kind cluster {self.name} an earlier run left behind")
            self._remove_cluster()

    def _probe_image(self) -> str:
        """Something to run a privileged probe with: busybox, imported once."""
        tag = "chaosdemo/probe:busybox"
        if self.docker("image", "inspect", tag, check=False).returncode != 0:
            busybox = shutil.which("busybox") or "/bin/busybox"
            ctx = self.workdir / "probe"
            (ctx / "bin").mkdir(parents=True, exist_ok=True)
            shutil.copy(busybox, ctx / "bin" / "busybox")
            (ctx / "bin" / "true").symlink_to("busybox")
            _sh("tar", "-C", str(ctx), "-cf", str(self.workdir / "probe.tar"), ".")
            self.docker("import", str(self.workdir / "probe.tar"), tag)
        return tag

    def _create(self) -> None:
        versions = {
            "k8s": "v1.36.3",
            "etcd": "v" + _sh(str(self.bins["control-plane"] / "etcd"), "--version").split()[2],
            "coredns": "v" + _sh(str(self.bins["kind-tier"] / "coredns"), "-version").split("CoreDNS-")[1].split()[0],
        }
        socket = self.host.removeprefix("unix://")
        cfg = _sh(sys.executable, "hack/kind/cluster-config.py", "--name", self.name, "--docker-socket", socket,
                  "--local-images", f"{LOCAL_REPO}:{versions['k8s']}:{versions['etcd']}:{versions['coredns']}")
        (self.workdir / "kind-config.yaml").write_text(cfg)
        from pytest_kind import KindCluster  # the user's named e2e library drives kind itself

        os.environ.update({k: self.env[k] for k in ("DOCKER_HOST", "PATH")})
        self.cluster = KindCluster(self.name, kubeconfig=self.kubeconfig, image=self.node_image,
                                   kind_path=self.bins["kind-tier"] / "kind",
                                   kubectl_path=self.bins["control-plane"] / "kubectl")
        try:
            self.cluster.create(config_file=self.workdir / "kind-config.yaml")
            self.kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._export_logs()
            raise

    def _images(self) -> None:
        assert self.tidb_operator is not None
        self.components = component_images(self.host, self.bins["control-plane"] / "etcd")
        self.tidb_operator_image = tidb_operator_image(self.host, self.tidb_operator / "bin", TIDB_OPERATOR_VERSION)
        seconds = operator_image(self.host, OPERATOR_IMAGE)
        self.progress(f"operator image built from the Dockerfile in {seconds:.0f}s")
        # Each image only where it runs: the operator's pods are pinned to the control-plane node (the Docker
        # socket is mounted there), and the control plane's taint keeps tidb-operator and the TidbCluster's
        # pods on the workers. One load per group: its images share their base layers, which cross once.
        nodes = self.kind("get", "nodes", "--name", self.name).split()
        control_plane = [n for n in nodes if n.endswith("-control-plane")]
        workers = [n for n in nodes if n not in control_plane]
        self.kind("load", "docker-image", "--name", self.name, "--nodes", ",".join(control_plane), OPERATOR_IMAGE,
                  timeout=1200)
        self.kind("load", "docker-image", "--name", self.name, "--nodes", ",".join(workers),
                  self.tidb_operator_image, *sorted(set(self.components.values())), timeout=1200)

    def _install_tidb_operator(self) -> None:
        """tidb-operator as its getting-started guide installs it: CRDs, then its chart; only the image is ours."""
        assert self.tidb_operator is not None
        self.kubectl("create", "-f", str(self.tidb_operator / "manifests" / "crd.yaml"))
        self.kubectl("create", "namespace", TIDB_ADMIN_NS)
        chart = self.tidb_operator / "charts" / "tidb-operator"
        _sh(str(self.bins["helm"]), "install", "tidb-operator", str(chart), "--namespace", TIDB_ADMIN_NS,
            "--set", f"operatorImage={self.tidb_operator_image}", "--wait", "--timeout", "5m",
            env=self.env, timeout=400)

    def tidb_cluster(self) -> dict[str, Any]:
        """deploy/tidb-cluster.yaml as users apply it, with the STAND-IN images in place of PD's, TiKV's, TiDB's."""
        tc: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "tidb-cluster.yaml").read_text())
        for role in ("pd", "tikv", "tidb"):
            tc["spec"][role]["baseImage"] = self.components[role].rsplit(":", 1)[0]
        tc["spec"]["helper"]["image"] = self.components["helper"]
        return tc

    def _tidb(self) -> None:
        self.kubectl("create", "namespace", TIDB_NS)
        self.kubectl("apply", "-n", TIDB_NS, "-f", "-", input=yaml.safe_dump(self.tidb_cluster()))
        self.wait_healthy(timeout=420)

    def _operator(self) -> None:
        gid = os.stat(self.host.removeprefix("unix://")).st_gid
        repo, tag = OPERATOR_IMAGE.rsplit(":", 1)
        _sh(str(self.bins["helm"]), "upgrade", "--install", "chaosdemo", "charts/chaosdemo-operator", "--namespace",
            "chaosdemo-system", "--create-namespace", "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
            "--set", "dockerSocket.enabled=true", "--set", f"dockerSocket.groupId={gid}", "--set", "replicas=2",
            # tidb-operator starts the stand-ins at PD's real timing (a heartbeat every 10 s): the chart's
            # default heartbeatStaleSeconds (11) is for that timing.
            *(a for k, v in sorted(self.operator_values.items()) for a in ("--set", f"{k}={v}")),
            "--wait", "--timeout", "5m",
            env=self.env, timeout=400)

    # ------------------------------------------------------------ health

    def healthy(self) -> tuple[bool, str]:
        tc = self.kubectl("get", "tidbcluster", "basic", "-n", TIDB_NS, "-o", "json", check=False)
        if tc.returncode != 0:
            return False, tc.stderr.strip()
        status = json.loads(tc.stdout).get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        stores = (status.get("tikv") or {}).get("stores") or {}
        ok = ready.get("status") == "True" and len(stores) == 3 and all(s["state"] == "Up" for s in stores.values())
        return ok, f"Ready={ready.get('status')} stores={ {k: v['state'] for k, v in stores.items()} }"

    def wait_healthy(self, timeout: float = 300) -> None:
        deadline, why = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            ok, why = self.healthy()
            if ok:
                return
            time.sleep(2)
        pods = self.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
        logs = self.kubectl("logs", "-n", TIDB_ADMIN_NS, "-l", "app.kubernetes.io/component=controller-manager",
                            "--tail", "40", check=False).stdout
        raise RuntimeError(f"the TidbCluster did not become healthy in {timeout:.0f}s: {why}\n{pods}\n"
                           f"tidb-operator's last lines:\n{logs}")

    # ------------------------------------------------------------ stop

    def _export_logs(self) -> None:
        out = self.workdir / "kind-logs"
        try:
            self.kind("export", "logs", "--name", self.name, str(out), timeout=300)
            self.progress(f"kind's logs are in {out}")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            self.progress(f"could not export kind's logs: {e}")

    def _remove_cluster(self) -> None:
        if "kind-tier" in self.bins:
            try:
                self.kind("delete", "cluster", "--name", self.name, timeout=300)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                self.progress(f"kind delete cluster failed: {e}")
        ids = self.docker("ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={self.name}",
                          check=False).stdout.decode().split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        self.docker("network", "rm", "kind", check=False)

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

"""The kind tier's setup steps, each a function of what it needs: the engine, tidb-operator, the TidbCluster of
STAND-INS, the operator's chart, and the health tidb-operator reports. ``KindEnv`` runs them in order."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from chaosdemo_local.cluster.docker_nodes import CACHE, Dockerd, docker_cli
from chaosdemo_local.kind.images import REPO, component_images, operator_image, tidb_operator_image
from chaosdemo_local.reaper import reap_leftovers

__all__ = [
    "OPERATOR_IMAGE",
    "TIDB_ADMIN_NS",
    "TIDB_NS",
    "TIDB_OPERATOR_VERSION",
    "TOOLS",
    "Unsupported",
    "build_and_load_images",
    "check_privileged",
    "create_cluster",
    "export_logs",
    "install_operator_chart",
    "install_tidb_operator",
    "kind_config",
    "remove_cluster",
    "sh",
    "start_engine",
    "tidb_cluster_manifest",
    "tidb_health",
    "tidb_operator_said",
]

LOCAL_REPO = "local.chaosdemo.dev"
OPERATOR_IMAGE = "chaosdemo-operator:kind-e2e"
TIDB_OPERATOR_VERSION = "v1.6.6"
TIDB_NS, TIDB_ADMIN_NS = "tidb-cluster", "tidb-admin"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]
TOOLS = (  # (what, its key in KindEnv.bins, the script that builds or reuses it and prints its path last)
    ("control plane binaries", "control-plane", "hack/build-control-plane.sh"),
    ("kind and node binaries", "kind-tier", "hack/build-kind-tier.sh"),
    ("helm", "helm", "hack/build-helm.sh"),  # the binary itself, not its folder
)


class Unsupported(RuntimeError):
    """This machine cannot run the kind tier (the reason says why); the suite is skipped, never hung."""


def sh(*args: str, env: dict[str, str] | None = None, timeout: float = 1800, cwd: Path = REPO) -> str:
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


def start_engine(workdir: Path, progress: Callable[[str], None]) -> Dockerd:
    """A user's engine (DOCKER_HOST, or the default socket) if it answers, else one of ours. Ours needs no
    default bridge (kind makes its own network) and caches its images across runs."""
    if shutil.which("docker") is None:
        raise Unsupported("no docker CLI on this machine")
    extra: list[str] = []
    if _lacks_sys_resource() and not os.environ.get("DOCKER_HOST"):
        wrapper = REPO / "hack" / "kind" / "runc-without-sys-resource"
        extra = ["--add-runtime", f"chaosdemo-runc={wrapper}", "--default-runtime", "chaosdemo-runc"]
        progress(f"CAP_SYS_RESOURCE is missing from the bounding set: containers run through {wrapper.name}")
    # A dockerd (and its nodes' shims) that a killed run left on our data root holds its lock: it goes.
    # One that another run still uses stays, and ours then fails to start, saying so.
    reap_leftovers(log=progress)
    dockerd = Dockerd(workdir / "dockerd", network=["--bridge=none"], data_root=CACHE / "kind-docker",
                      extra=extra, also_try=("unix:///var/run/docker.sock",))
    try:
        dockerd.start()
    except RuntimeError as e:
        raise Unsupported(f"no Docker engine could be started (is another kind-tier run using "
                          f"{CACHE / 'kind-docker'}?): {str(e)[-300:]}") from e
    return dockerd


def check_privileged(host: str, workdir: Path) -> None:
    """Kind nodes are privileged containers: an engine that cannot run one cannot run the tier."""
    tag = "chaosdemo/probe:busybox"  # something to run the probe with: busybox, imported once
    if docker_cli(host, "image", "inspect", tag, check=False).returncode != 0:
        busybox = shutil.which("busybox") or "/bin/busybox"
        ctx = workdir / "probe"
        (ctx / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy(busybox, ctx / "bin" / "busybox")
        (ctx / "bin" / "true").symlink_to("busybox")
        sh("tar", "-C", str(ctx), "-cf", str(workdir / "probe.tar"), ".")
        docker_cli(host, "import", str(workdir / "probe.tar"), tag)
    probe = docker_cli(host, "run", "--rm", "--privileged", "--entrypoint", "true", tag, check=False)
    if probe.returncode != 0:
        raise Unsupported(f"this Docker engine cannot run privileged containers, which kind nodes are: "
                          f"{probe.stderr.decode(errors='replace')[-300:]}")


def install_tidb_operator(kubectl: Kubectl, helm: Path, build: Path, image: str, env: dict[str, str]) -> None:
    """tidb-operator as its getting-started guide installs it: CRDs, then its chart; only the image is ours."""
    kubectl("create", "-f", str(build / "manifests" / "crd.yaml"))
    kubectl("create", "namespace", TIDB_ADMIN_NS)
    sh(str(helm), "install", "tidb-operator", str(build / "charts" / "tidb-operator"), "--namespace", TIDB_ADMIN_NS,
       "--set", f"operatorImage={image}", "--wait", "--timeout", "5m", env=env, timeout=400)


KIND_CLUSTER_DOMAIN = "cluster.local"


def tidb_cluster_manifest(components: dict[str, str]) -> dict[str, Any]:
    """deploy/tidb-cluster.yaml as users apply it, with the STAND-IN images in place of PD's, TiKV's, TiDB's,
    and a ``clusterDomain``."""
    tc: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "tidb-cluster.yaml").read_text())
    for role in ("pd", "tikv", "tidb"):
        tc["spec"][role]["baseImage"] = components[role].rsplit(":", 1)[0]
    tc["spec"]["helper"]["image"] = components["helper"]
    # As production clusters (and every cluster across Kubernetes clusters) set it: tidb-operator then names
    # PD members, and TiKV and TiDB advertise themselves, by their FQDN in this domain (its start scripts,
    # startscript/v1/template.go), which the operator must read as the same pods (its quorum guard, its
    # stores). kind's kubelets use cluster.local.
    tc["spec"]["clusterDomain"] = KIND_CLUSTER_DOMAIN
    # PD as users apply it, three members electing a leader (the PD STAND-IN's etcd members join as
    # tidb-operator's discovery has them); KIND_PD_REPLICAS=1 runs one.
    tc["spec"]["pd"]["replicas"] = int(os.environ.get("KIND_PD_REPLICAS") or tc["spec"]["pd"]["replicas"])
    return tc


def install_operator_chart(helm: Path, host: str, values: dict[str, str], env: dict[str, str]) -> None:
    """The operator from its own chart and image, the Docker socket mounted, two replicas."""
    gid = os.stat(host.removeprefix("unix://")).st_gid
    repo, tag = OPERATOR_IMAGE.rsplit(":", 1)
    sh(str(helm), "upgrade", "--install", "chaosdemo", "charts/chaosdemo-operator", "--namespace",
       "chaosdemo-system", "--create-namespace", "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
       "--set", "dockerSocket.enabled=true", "--set", f"dockerSocket.groupId={gid}", "--set", "replicas=2",
       # tidb-operator starts the stand-ins at PD's real timing (a heartbeat every 10 s): the chart's
       # default heartbeatStaleSeconds (11) is for that timing.
       *(a for k, v in sorted(values.items()) for a in ("--set", f"{k}={v}")),
       "--wait", "--timeout", "5m", env=env, timeout=400)


def tidb_health(kubectl: Kubectl) -> tuple[bool, str]:
    """What tidb-operator's status says: the TidbCluster Ready, its three stores Up."""
    tc = kubectl("get", "tidbcluster", "basic", "-n", TIDB_NS, "-o", "json", check=False)
    if tc.returncode != 0:
        return False, tc.stderr.strip()
    status = json.loads(tc.stdout).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    stores = (status.get("tikv") or {}).get("stores") or {}
    ok = ready.get("status") == "True" and len(stores) == 3 and all(s["state"] == "Up" for s in stores.values())
    return ok, f"Ready={ready.get('status')} stores={ {k: v['state'] for k, v in stores.items()} }"


def kind_config(name: str, host: str, bins: dict[str, Path]) -> str:
    """kind-config.yaml plus what this host needs (``hack/kind/cluster-config.py``), with the node image's
    own versions of Kubernetes, etcd and CoreDNS as the local images kind must not pull."""
    versions = {
        "k8s": "v1.36.3",
        "etcd": "v" + sh(str(bins["control-plane"] / "etcd"), "--version").split()[2],
        "coredns": "v" + sh(str(bins["kind-tier"] / "coredns"), "-version").split("CoreDNS-")[1].split()[0],
    }
    return sh(sys.executable, "hack/kind/cluster-config.py", "--name", name, "--docker-socket",
              host.removeprefix("unix://"),
              "--local-images", f"{LOCAL_REPO}:{versions['k8s']}:{versions['etcd']}:{versions['coredns']}")


def build_and_load_images(kind: Callable[..., str], name: str, host: str, etcd: Path, tidb_operator: Path,
                          progress: Callable[[str], None]) -> tuple[dict[str, str], str]:
    """The STAND-IN component images, tidb-operator's and the operator's, each loaded only where it runs:
    (the components by role, tidb-operator's image)."""
    components = component_images(host, etcd)
    tidb_op_image = tidb_operator_image(host, tidb_operator / "bin", TIDB_OPERATOR_VERSION)
    seconds = operator_image(host, OPERATOR_IMAGE)
    progress(f"operator image built from the Dockerfile in {seconds:.0f}s")
    # The operator's pods are pinned to the control-plane node (the Docker socket is mounted there), and the
    # control plane's taint keeps tidb-operator and the TidbCluster's pods on the workers. One load per group:
    # its images share their base layers, which cross once.
    nodes = kind("get", "nodes", "--name", name).split()
    control_plane = [n for n in nodes if n.endswith("-control-plane")]
    workers = [n for n in nodes if n not in control_plane]
    kind("load", "docker-image", "--name", name, "--nodes", ",".join(control_plane), OPERATOR_IMAGE, timeout=1200)
    kind("load", "docker-image", "--name", name, "--nodes", ",".join(workers), tidb_op_image,
         *sorted(set(components.values())), timeout=1200)
    return components, tidb_op_image


def remove_cluster(kind: Callable[..., str] | None, host: str, name: str, progress: Callable[[str], None]) -> None:
    """The kind cluster, by kind if it is built, then whatever containers and network it left."""
    if kind is not None:
        try:
            kind("delete", "cluster", "--name", name, timeout=300)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            progress(f"kind delete cluster failed: {e}")
    ids = docker_cli(host, "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}",
                     check=False).stdout.decode().split()
    if ids:
        docker_cli(host, "rm", "-f", *ids, check=False)
    docker_cli(host, "network", "rm", "kind", check=False)


def create_cluster(name: str, config: Path, kubeconfig: Path, image: str, bins: dict[str, Path], kubectl: Kubectl,
                   on_failure: Callable[[], None]) -> Any:
    """``kind create cluster`` through pytest-kind (the user's named e2e library drives kind itself), until
    every node is Ready; on failure ``on_failure`` runs (kind's logs exported) and the error stands."""
    from pytest_kind import KindCluster

    cluster = KindCluster(name, kubeconfig=kubeconfig, image=image, kind_path=bins["kind-tier"] / "kind",
                          kubectl_path=bins["control-plane"] / "kubectl")
    try:
        cluster.create(config_file=config)
        kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        on_failure()
        raise
    return cluster


def export_logs(kind: Callable[..., str], name: str, out: Path, progress: Callable[[str], None]) -> None:
    try:
        kind("export", "logs", "--name", name, str(out), timeout=300)
        progress(f"kind's logs are in {out}")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        progress(f"could not export kind's logs: {e}")


def tidb_operator_said(kubectl: Kubectl) -> str:
    """The pods, and tidb-operator's last lines: what a TidbCluster that never became healthy is read with."""
    pods = kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
    logs = kubectl("logs", "-n", TIDB_ADMIN_NS, "-l", "app.kubernetes.io/component=controller-manager",
                   "--tail", "40", check=False).stdout
    return f"{pods}\ntidb-operator's last lines:\n{logs}"

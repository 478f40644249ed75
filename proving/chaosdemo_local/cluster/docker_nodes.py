"""Worker nodes backed by real Docker containers, as kind's nodes are.

Each worker gets a container named like kind's node (``<cluster>-worker``,
``-worker2``, ...) with kind's labels, running that node's simulated kubelet
(kwok with ``--manage-single-node``). ``docker kill`` therefore really stops
the node's heartbeats: the controller-manager marks it NotReady on its own
timing and the SIMULATED PD stops the stores on it; ``docker start`` brings
it back. The image is assembled locally (busybox-static and the kwok binary,
``docker import``): no registry is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaosdemo_local.reaper import die_with_parent, marked_env, remove_run_dir, unmount_under

__all__ = ["CACHE", "Dockerd", "NodeContainers", "build_node_image", "cached_data_root", "docker_cli"]

KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
KIND_ROLE_LABEL = "io.x-k8s.kind.role"
# What the tiers keep across runs, outside the work tree: the tiers' Docker engines' data (their images).
CACHE = Path(os.environ.get("CHAOSDEMO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "chaosdemo")


def cached_data_root(name: str) -> tuple[Path, int] | None:
    """A data root under CACHE for one Docker engine at a time, and the lock held on it (an open fd).

    Its images (the node image, the Python base, the operator's build layers)
    then outlive the run. None when another run holds it: that run's engine
    owns it, and the caller keeps a data root of its own.
    """
    import fcntl

    root = CACHE / name / "dockerd" / "data"  # ends like LOCAL_DATA_ROOT: a killed engine's mount is found
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(CACHE / name / "dockerd.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return root, fd


def docker_cli(host: str, *args: str, check: bool = True,
               input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["docker", "--host", host, *args], check=check, capture_output=True, input=input)


def _answers(host: str) -> bool:
    try:
        return docker_cli(host, "version", "--format", "{{.Server.Version}}", check=False).returncode == 0
    except FileNotFoundError:
        return False


@dataclass
class Dockerd:
    """A Docker engine for the local tier: the one DOCKER_HOST names if it answers, else our own."""

    workdir: Path
    host: str = ""
    process: subprocess.Popen[bytes] | None = None
    # The local tier's engine needs no network of its own; the kind tier's gets a bridge and iptables.
    network: list[str] = field(default_factory=lambda: ["--bridge=none", "--iptables=false", "--ip-masq=false"])
    data_root: Path | None = None  # default: inside workdir (thrown away with it)
    extra: list[str] = field(default_factory=list)
    use_env_host: bool = True  # an engine that DOCKER_HOST names (or one of also_try) is used if it answers
    also_try: tuple[str, ...] = ()
    run_dir: Path | None = None
    live_restore: bool = False  # containers outlive a restart of the engine (dockerd --live-restore)

    def start(self, timeout: float = 60) -> Dockerd:
        if self.use_env_host:
            for host in (os.environ.get("DOCKER_HOST", ""), *self.also_try):
                if host and _answers(host):
                    self.host = host
                    return self
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
        # Unix socket paths are limited to about 100 bytes: keep them short.
        run = self.run_dir = Path(tempfile.mkdtemp(prefix="cd-dockerd-"))
        self.host = f"unix://{run}/docker.sock"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._launch(timeout)
        return self

    def _launch(self, timeout: float) -> None:
        run = self.run_dir
        assert run is not None
        with open(self.workdir / "dockerd.log", "ab") as log:
            self.process = subprocess.Popen(
                ["dockerd", "--host", self.host, "--data-root", str(self.data_root or self.workdir / "data"),
                 "--exec-root", str(run / "exec"), "--pidfile", str(run / "docker.pid"), *self.network,
                 *(["--live-restore"] if self.live_restore else []), *self.extra],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=marked_env(),
                preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while not _answers(self.host):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.workdir / "dockerd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)

    def restart(self, down_seconds: float) -> None:
        """Stop this engine (SIGTERM, as a service manager does), keep it down, start it again.

        With ``live_restore`` the containers run on meanwhile; a stopped one stays stopped.
        """
        if self.process is None:
            raise RuntimeError("only an engine started here can be restarted")
        self._terminate()
        time.sleep(down_seconds)
        self._launch(60)

    def _terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)

    def stop(self) -> None:
        started_here = self.process is not None
        self._terminate()
        self.process = None
        if started_here:  # with --live-restore the engine leaves its mounts behind on purpose
            unmount_under(self.data_root or self.workdir / "data", itself=True)
        if self.run_dir is not None:
            remove_run_dir(self.run_dir)
            self.run_dir = None


def build_node_image(host: str, kwok: Path) -> str:
    """Assemble a node root filesystem (busybox + kwok) and ``docker import`` it; reuse it if present."""
    digest = hashlib.sha256(kwok.read_bytes()).hexdigest()[:12]
    tag = f"chaosdemo-node:kwok-{digest}"
    if docker_cli(host, "image", "inspect", tag, check=False).returncode == 0:
        return tag
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is not installed (apt-get install busybox-static)")
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        (rootfs / "tmp").mkdir()
        shutil.copy2(busybox, rootfs / "bin" / "busybox")
        for applet in ("sh", "sleep", "ls", "cat", "ps", "kill"):
            (rootfs / "bin" / applet).symlink_to("busybox")
        shutil.copy2(kwok, rootfs / "kwok")
        tar_path = Path(tmp) / "rootfs.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(rootfs, arcname=".")
        docker_cli(host, "import", "--message", "chaosdemo local-tier node (busybox + kwok)", str(tar_path), tag)
    return tag


@dataclass
class NodeContainers:
    host: str
    cluster: str
    image: str
    kubeconfig: Path
    stages: list[Path]
    names: list[str] = field(default_factory=list)

    def start(self, nodes: list[str], lease_seconds: int, port_of: dict[str, int]) -> None:
        for i, node in enumerate(nodes):
            docker_cli(self.host, "rm", "-f", node, check=False)
            mounts = ["-v", f"{self.kubeconfig}:/etc/kwok/kubeconfig:ro"]
            configs = []
            for stage in self.stages:
                mounts += ["-v", f"{stage}:/etc/kwok/stages/{stage.name}:ro"]
                configs.append(f"--config=/etc/kwok/stages/{stage.name}")
            docker_cli(
                self.host, "run", "-d", "--name", node, "--hostname", node, "--network", "host",
                "--label", f"{KIND_CLUSTER_LABEL}={self.cluster}", "--label", f"{KIND_ROLE_LABEL}=worker",
                *mounts, self.image, "/kwok", "--kubeconfig=/etc/kwok/kubeconfig", f"--manage-single-node={node}",
                f"--cidr=10.244.{i + 1}.0/24", f"--node-ip=10.89.0.{i + 2}",
                f"--node-lease-duration-seconds={lease_seconds}", f"--server-address=127.0.0.1:{port_of[node]}",
                *configs)
            self.names.append(node)

    def remove(self) -> None:
        for node in self.names:
            docker_cli(self.host, "rm", "-f", node, check=False)
        self.names.clear()

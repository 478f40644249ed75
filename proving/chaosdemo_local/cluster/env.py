"""The local tier as one object: a real control plane, the tidb-operator stand-in, the
SIMULATED PD, and the operator as a real process. Used by ``make demo`` and the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from chaosdemo_local.cluster import tidb_operator
from chaosdemo_local.cluster.control_plane import REPO, LocalCluster, find_binaries, free_port
from chaosdemo_local.cluster.docker_nodes import Dockerd, cached_data_root, docker_cli
from chaosdemo_local.cluster.health import pd_call, tier_health
from chaosdemo_local.reaper import die_with_parent, marked_env, reap_leftovers

__all__ = ["LocalEnv", "Process"]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        self.signal(sig)
        return self.reap(timeout)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def reap(self, timeout: float = 15) -> int:
        """Wait for the process to end, SIGKILLing it after ``timeout`` seconds."""
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)
        return int(self.popen.returncode)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class KubectlFailed(subprocess.CalledProcessError):
    """A kubectl that failed, saying what kubectl said."""

    def __str__(self) -> str:
        return f"{super().__str__()}: {(self.stderr or '').strip()[-600:]}"


def start_dockerd(workdir: Path) -> tuple[Dockerd | None, int | None, str]:
    """Our Docker engine, on the cached data root when no other run holds it (images then outlive the run):
    (the engine or None, the data root's lock or None, why there is no engine)."""
    cached = cached_data_root("local-tier")
    if cached is None:
        print("[local-tier] another run holds the cached Docker data root: this one keeps its own (its images "
              "are built again)", file=sys.stderr)
    lock = cached[1] if cached else None
    try:
        dockerd = Dockerd(workdir, live_restore=True, data_root=cached[0] if cached else None).start()
    except RuntimeError as e:
        return None, lock, str(e)
    if cached is not None and dockerd.process is not None:
        # Ours alone (the lock): containers a killed run left in it go; its images stay.
        left = docker_cli(dockerd.host, "ps", "-aq").stdout.decode().split()
        if left:
            docker_cli(dockerd.host, "rm", "-f", *left, check=False)
    return dockerd, lock, ""


def operator_env(pd_url: str, s: float, namespace: str, docker_host: str, **extra: str) -> dict[str, str]:
    """The operator's settings on the local tier: its PD, and its timings scaled as the tier's."""
    env = {
        "CHAOSDEMO_PD_URL_TEMPLATE": pd_url,
        # The SIMULATED stores have no TiKV process to ask on a status port: tikv-stores-answer is off here
        # (on by default, and on the kind tier, where the stand-in TiKV serves /status).
        "CHAOSDEMO_STORE_PROBE": "false",
        # The tests' demos live in namespaces of their own and target tidb-cluster: allowed on purpose.
        "CHAOSDEMO_TARGET_NAMESPACES": namespace,
        "CHAOSDEMO_POLL_SECONDS": str(max(0.2, 2.0 * s)),
        "CHAOSDEMO_HEARTBEAT_STALE_SECONDS": str(15.0 * s),
        "CHAOSDEMO_LOOK_INTERVAL_SECONDS": str(0.25 * s),
        "CHAOSDEMO_SAVE_INTERVAL_SECONDS": str(1.0 * s),
        "CHAOSDEMO_DIAGNOSIS_SETTLE_SECONDS": str(10.0 * s),
        # A killed operator's successor waits out its leader Lease: 5 s here, 15 s by default.
        "CHAOSDEMO_LEADER_LEASE_SECONDS": "5",
        # Several operators share this host in the tests: metrics only where a test asks, on its own port.
        "CHAOSDEMO_METRICS_PORT": "0",
        "ANTHROPIC_API_KEY": "",
        "DOCKER_HOST": docker_host,
    }
    env.update(extra)
    return env


@dataclass
class LocalEnv:
    workdir: Path
    time_scale: float = 0.1
    name: str = "chaosdemo"
    tidb_namespace: str = "tidb-cluster"
    tidb_name: str = "basic"
    cluster: LocalCluster | None = None
    pd_port: int = 0
    sql_port: int = 0  # the SIMULATED TiDB's MySQL port, served by the pd-sim process
    processes: list[Process] = field(default_factory=list)
    docker: bool = True  # back the workers with Docker containers when a Docker engine can run
    dockerd: Dockerd | None = None
    docker_error: str = ""
    _data_root_lock: int | None = None  # the fd holding the cached data root's lock

    # ------------------------------------------------------------ lifecycle

    def start(self) -> LocalEnv:
        self.workdir.mkdir(parents=True, exist_ok=True)
        reap_leftovers(log=lambda msg: print(f"[local-tier] {msg}", file=sys.stderr))
        if self.docker:
            self.dockerd, self._data_root_lock, self.docker_error = start_dockerd(self.workdir / "dockerd")
        self.cluster = LocalCluster(self.name, self.workdir / "cluster", find_binaries(),
                                    node_monitor_grace_seconds=max(5, round(40 * self.time_scale)),
                                    docker_host=self.docker_host or None).start()
        self.kubectl("apply", "-f", str(REPO / "crds" / "chaosdemo.yaml"))
        # What the chart installs by default, as a user's cluster has it: who may break what, and status
        # written only by a holder of write-status (the operator runs here as the cluster's admin).
        self.kubectl("apply", "-f", str(REPO / "deploy" / "admission-policy.yaml"))
        asyncio.run(self._install_tidb())
        self.pd_port, self.sql_port = free_port(), free_port()
        self.spawn("pd-sim", [sys.executable, "-m", "chaosdemo_local.cli", "pd-sim",
                              "--kubeconfig", str(self.kubeconfig), "--port", str(self.pd_port),
                              "--sql-port", str(self.sql_port),
                              "--cluster", self.tidb_name, "--namespace", self.tidb_namespace,
                              "--time-scale", str(self.time_scale), "--docker-host", self.docker_host])
        self.kubectl("wait", "--for=condition=Established", "crd/chaosdemos.chaosdemo.dev", "--timeout=30s")
        self.wait_healthy(timeout=60)
        return self

    async def _install_tidb(self) -> None:
        cfg = client.Configuration()
        await config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=cfg)
        async with client.ApiClient(configuration=cfg) as api:
            await tidb_operator.install(api, self.tidb_namespace, self.tidb_name)

    def stop(self) -> None:
        for p in self.processes:  # all at once: each may take a while to wind down
            p.signal()
        for p in self.processes:
            p.reap()
        self.processes.clear()
        if self.cluster is not None:
            self.cluster.stop()
        if self.dockerd is not None:
            self.dockerd.stop()
        if self._data_root_lock is not None:
            os.close(self._data_root_lock)  # releases the lock
            self._data_root_lock = None

    def __enter__(self) -> LocalEnv:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ helpers

    @property
    def kubeconfig(self) -> Path:
        assert self.cluster is not None
        return self.cluster.kubeconfig

    @property
    def docker_host(self) -> str:
        return self.dockerd.host if self.dockerd is not None else ""

    @property
    def pd_url(self) -> str:
        return f"http://127.0.0.1:{self.pd_port}"

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        assert self.cluster is not None
        out = subprocess.run([str(self.cluster.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                             check=False, capture_output=True, text=True, input=input)
        if check and out.returncode != 0:
            raise KubectlFailed(out.returncode, out.args, out.stdout, out.stderr)
        return out

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def api(self, path: str) -> Any:
        """A GET of an API server path, over HTTP: no kubectl process on the cores the tier shares."""
        assert self.cluster is not None
        return self.cluster.api(path)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        logdir = self.workdir / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        log = logdir / f"{name}.log"
        with open(log, "ab") as fh:
            popen = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
                                     env=marked_env({**os.environ, "KUBECONFIG": str(self.kubeconfig), **(env or {})}),
                                     preexec_fn=die_with_parent)
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def pd(self, path: str, method: str = "GET", body: Any = None) -> Any:
        return pd_call(self.pd_url, path, method, body)

    def healthy(self) -> tuple[bool, str]:
        """Whether the cluster is as a demo's preflight needs it (``health.tier_health``)."""
        assert self.cluster is not None
        return tier_health(self.cluster, self.pd_url, self.tidb_namespace, self.tidb_name)

    def wait_healthy(self, timeout: float = 60) -> str:
        """Wait until the cluster is healthy (``healthy``), with a deadline."""
        deadline = time.monotonic() + timeout
        why = ""
        while time.monotonic() < deadline:
            ok, why = self.healthy()
            if ok:
                return why
            time.sleep(0.2)
        raise TimeoutError(f"local TiDB stand-in not healthy after {timeout}s: {why}")

    def operator_env(self, **extra: str) -> dict[str, str]:
        return operator_env(self.pd_url, self.time_scale, self.tidb_namespace, self.docker_host,
                            **{"CHAOSDEMO_TIDB_ADDRESS_TEMPLATE": f"127.0.0.1:{self.sql_port}", **extra})

    def start_operator(self, name: str = "operator", args: tuple[str, ...] = (), verbose: bool = True,
                       **extra: str) -> Process:
        """The operator from the work tree; ``verbose=False`` logs as the chart runs it (INFO, not kopf's debug)."""
        return self.spawn(name, [sys.executable, "-m", "chaosdemo", "run", *(["--verbose"] if verbose else []), *args],
                          env=self.operator_env(**extra))

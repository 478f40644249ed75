"""The operator image: the real Dockerfile, built and run here.

No registry can be reached, so python:3.11-slim is stood in for by Debian bookworm's
minimal base with its python3 3.11 (built by hack/build-test-base.sh from Debian's
packages; the image name says it is a stand-in). The image then runs the operator as
its non-root user with a read-only root filesystem, against the local tier's API server.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosdemo_local.cluster.control_plane import free_port
from chaosdemo_local.cluster.docker_nodes import docker_cli
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos
from chaosdemo_local.cluster.tikv import tikv_pods
from chaosdemo_local.kind.images import operator_image

# The first test builds the image (on a new machine, the Python base from Debian's packages too): minutes.
pytestmark = [pytest.mark.local, pytest.mark.docker, pytest.mark.timeout(1200)]
IMAGE = "chaosdemo-operator:local-test"


@pytest.fixture(scope="module")
def image(local_env: LocalEnv) -> str:
    host = local_env.docker_host
    if not host:
        pytest.skip(f"no Docker engine in the local tier: {local_env.docker_error}")
    try:
        seconds = operator_image(host, IMAGE)
    except RuntimeError as e:
        if "stand-in base" in str(e):
            pytest.skip(str(e))
        raise
    print(f"operator image built in {seconds:.0f}s")
    return IMAGE


def run(host: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return docker_cli(host, "run", "--rm", *args, check=False)


def test_the_image_runs_as_its_non_root_user_and_leaves_the_local_tier_out(local_env: LocalEnv, image: str) -> None:
    host = local_env.docker_host
    assert run(host, "--entrypoint", "id", image).stdout.decode().startswith("uid=10001(chaosdemo)")
    assert b"ChaosDemo" in run(host, image, "crd").stdout
    probe = run(host, "--entrypoint", "python", image, "-c", "import chaosdemo_local")
    assert probe.returncode != 0, "the local proving ground is not shipped"


@pytest.fixture
def operator_container(local_env: LocalEnv, image: str, tmp_path: Path) -> Iterator[int]:
    """The operator image running the operator; yields the port of its Prometheus endpoint."""
    host, port, name = local_env.docker_host, free_port(), f"operator-{uuid.uuid4().hex[:6]}"
    metrics_port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(local_env.kubeconfig.read_text())
    kubeconfig.chmod(0o644)
    env = [f"-e{k}={v}" for k, v in local_env.operator_env(CHAOSDEMO_METRICS_PORT=str(metrics_port)).items()]
    docker_cli(host, "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "-v", f"{kubeconfig}:/kube/config:ro",
               "-e", "KUBECONFIG=/kube/config", *env, image, "run", "--liveness", f"http://127.0.0.1:{port}/healthz")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            state = json.loads(docker_cli(host, "inspect", name).stdout)[0]["State"]
            if not state["Running"] or time.monotonic() > deadline:
                logs = docker_cli(host, "logs", name, check=False).stderr[-2000:]
                pytest.fail(f"operator container not healthy: {logs!r}")
            time.sleep(0.5)
        yield metrics_port
        # Stopped as Kubernetes stops a pod (SIGTERM, then a grace period): the operator hands its leader
        # Lease back on the way out, or the next operator waits it out (the tier check names such a Lease).
        stopped = docker_cli(host, "stop", "--time", "20", name, check=False)
        assert stopped.returncode == 0, stopped.stderr
    finally:
        docker_cli(host, "rm", "-f", name, check=False)


def test_the_image_runs_a_demo_with_a_read_only_root_filesystem(local_env: LocalEnv, operator_container: int,
                                                                 demos: Demos) -> None:
    local_env.wait_healthy(timeout=60)
    before = tikv_pods(local_env)["basic-tikv-2"]["metadata"]["uid"]
    demos.apply("from-image", target={"pod": "basic-tikv-2"})
    st = demos.wait("from-image", timeout=90)["status"]
    assert st["phase"] == "Succeeded", st.get("message")
    assert tikv_pods(local_env)["basic-tikv-2"]["metadata"]["uid"] != before
    # The counter moves right after the terminal status is written: give it a moment.
    want = 'chaosdemo_demos_total{action="pod-delete",outcome="Succeeded"} 1.0'
    metrics, deadline = "", time.monotonic() + 10
    while want not in metrics and time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator_container}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        time.sleep(0.2)
    assert want in metrics, metrics[:2000]

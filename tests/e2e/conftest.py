"""The kind tier: a real kind cluster (kind-config.yaml), tidb-operator from its Helm chart,
a real TidbCluster, and the operator from its image and chart.

Needs docker, kind, kubectl, helm and internet access. Where any is missing the
whole tier is skipped, and the reason is printed in pytest's summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER = os.environ.get("KIND_CLUSTER", "chaosdemo-e2e")
TIDB_OPERATOR_VERSION = os.environ.get("TIDB_OPERATOR_VERSION", "v1.6.6")
IMAGE = os.environ.get("IMAGE", "chaosdemo-operator:e2e")


def missing_prerequisites() -> list[str]:
    missing = [tool for tool in ("docker", "kind", "kubectl", "helm") if shutil.which(tool) is None]
    if "docker" not in missing and subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        missing.append("a running Docker engine")
    return missing


def sh(*args: str, timeout: float = 1800) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout).stdout


@pytest.fixture(scope="session")
def kind_cluster() -> Iterator[object]:
    missing = missing_prerequisites()
    if missing:
        pytest.skip(f"kind tier needs docker, kind, kubectl, helm and internet access; missing here: "
                    f"{', '.join(missing)} (run `make test-kind` on a machine that has them)")
    from pytest_kind import KindCluster

    cluster = KindCluster(CLUSTER, kind_path=Path(shutil.which("kind") or "kind"),
                          kubectl_path=Path(shutil.which("kubectl") or "kubectl"))
    cluster.create(config_file=REPO / "kind-config.yaml")
    env_kubeconfig = str(cluster.kubeconfig_path)
    os.environ["KUBECONFIG"] = env_kubeconfig
    crd = f"https://raw.githubusercontent.com/pingcap/tidb-operator/{TIDB_OPERATOR_VERSION}/manifests/crd.yaml"
    if subprocess.run(["kubectl", "create", "-f", crd], capture_output=True).returncode != 0:
        sh("kubectl", "replace", "-f", crd)
    sh("helm", "repo", "add", "pingcap", "https://charts.pingcap.com/", "--force-update")
    sh("helm", "upgrade", "--install", "tidb-operator", "pingcap/tidb-operator", "--namespace", "tidb-admin",
       "--create-namespace", "--version", TIDB_OPERATOR_VERSION, "--wait")
    sh("kubectl", "create", "namespace", "tidb-cluster")
    sh("kubectl", "apply", "-f", str(REPO / "deploy" / "tidb-cluster.yaml"))
    sh("kubectl", "wait", "-n", "tidb-cluster", "tidbcluster/basic", "--for=condition=Ready", "--timeout=25m")
    sh("docker", "build", "-t", IMAGE, str(REPO))
    cluster.load_docker_image(IMAGE)
    gid = sh("stat", "-c", "%g", "/var/run/docker.sock").strip()
    repo, tag = IMAGE.rsplit(":", 1)
    sh("helm", "upgrade", "--install", "chaosdemo", str(REPO / "charts" / "chaosdemo-operator"),
       "--namespace", "chaosdemo-system", "--create-namespace", "--set", f"image.repository={repo}",
       "--set", f"image.tag={tag}", "--set", "dockerSocket.enabled=true", "--set", f"dockerSocket.groupId={gid}",
       "--wait")
    yield cluster
    if not os.environ.get("KEEP_CLUSTER"):
        cluster.delete()

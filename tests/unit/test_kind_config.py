"""kind-config.yaml cannot be run here (no kind, no images); its shape is checked instead."""

from pathlib import Path
from typing import get_args

import yaml

from chaosdemo.api.models import FaultAction

REPO = Path(__file__).resolve().parents[2]


def test_one_control_plane_and_three_workers_one_per_tikv_store() -> None:
    cfg = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert (cfg["kind"], cfg["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker", "worker", "worker"]


def test_the_docker_socket_is_mounted_into_the_control_plane_node_only() -> None:
    nodes = yaml.safe_load((REPO / "kind-config.yaml").read_text())["nodes"]
    assert nodes[0]["extraMounts"] == [{"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"}]
    assert all("extraMounts" not in n for n in nodes[1:])


def test_the_tidb_cluster_for_chaos_has_three_tikv_and_no_failover() -> None:
    tc = yaml.safe_load((REPO / "deploy" / "tidb-cluster.yaml").read_text())
    assert tc["metadata"]["name"] == "basic" and tc["spec"]["tikv"]["replicas"] == 3
    assert tc["spec"]["tikv"]["maxFailoverCount"] == 0
    assert "max-store-down-time" in tc["spec"]["pd"]["config"]


def test_there_is_a_sample_per_fault_action() -> None:
    actions = set()
    for f in (REPO / "deploy" / "samples").glob("*.yaml"):
        doc = yaml.safe_load(f.read_text())
        assert doc["kind"] == "ChaosDemo" and doc["spec"]["cluster"]["name"] == "basic"
        actions.add(doc["spec"].get("fault", {}).get("action", "pod-delete"))
    assert actions == set(get_args(FaultAction))

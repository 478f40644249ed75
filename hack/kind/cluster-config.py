#!/usr/bin/env python3
"""The kind config the harness uses: the project's kind-config.yaml, plus only what this host needs.

    cluster-config.py [--local-images REPO:K8S:ETCD:COREDNS] [--docker-socket PATH] > config.yaml

What a user with a normal machine and kind's published node image gets is
kind-config.yaml unchanged. Each addition below is made only when the host
needs it, and says why on stderr:
- images built here (no registry): kubeadm and containerd are told their names;
- a cgroup v1 host: kubelet 1.36 refuses cgroup v1 unless failCgroupV1 is false;
- CAP_SYS_RESOURCE missing from the capability bounding set: containerd must
  not try to lower oom_score_adj (restrict_oom_score_adj);
- a Docker socket somewhere else than /var/run/docker.sock: the mount follows it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

CAP_SYS_RESOURCE = 24


def cgroup_v1() -> bool:
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def lacks_sys_resource() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return not (int(line.split()[1], 16) >> CAP_SYS_RESOURCE) & 1
    return False


def say(why: str) -> None:
    print(f"[kind-config] {why}", file=sys.stderr)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base", default=str(Path(__file__).resolve().parents[2] / "kind-config.yaml"))
    p.add_argument("--name")
    p.add_argument("--local-images", help="REPO:K8S_VERSION:ETCD_TAG:COREDNS_TAG of the images built here")
    p.add_argument("--docker-socket", default="/var/run/docker.sock")
    a = p.parse_args()
    cfg = yaml.safe_load(Path(a.base).read_text())
    if a.name:
        cfg["name"] = a.name
    kubeadm: list[str] = cfg.setdefault("kubeadmConfigPatches", [])
    containerd: list[str] = cfg.setdefault("containerdConfigPatches", [])
    cri: list[str] = []
    if a.local_images:
        repo, _k8s, etcd, coredns = a.local_images.split(":")
        say(f"images built here, named under {repo}/: kubeadm and containerd use them")
        kubeadm.append(yaml.safe_dump({
            "kind": "ClusterConfiguration", "imageRepository": repo,
            "etcd": {"local": {"imageTag": etcd}}, "dns": {"imageTag": coredns}}))
        cri.append(f'sandbox_image = "{repo}/pause:3.10-local"')
    if cgroup_v1():
        say("cgroup v1 host: kubelet's failCgroupV1 set to false")
        kubeadm.append(yaml.safe_dump({"kind": "KubeletConfiguration", "failCgroupV1": False}))
    if lacks_sys_resource():
        say("CAP_SYS_RESOURCE is missing from the bounding set: containerd's restrict_oom_score_adj set")
        cri.append("restrict_oom_score_adj = true")
    if cri:
        containerd.append('[plugins."io.containerd.grpc.v1.cri"]\n' + "\n".join(f"  {c}" for c in cri) + "\n")
    if os.path.realpath(a.docker_socket) != "/var/run/docker.sock":
        say(f"the Docker socket is {a.docker_socket}: the control-plane node mounts that one")
        for node in cfg.get("nodes", []):
            for m in node.get("extraMounts", []):
                if m.get("containerPath") == "/var/run/docker.sock":
                    m["hostPath"] = a.docker_socket
    if not kubeadm:
        del cfg["kubeadmConfigPatches"]
    if not containerd:
        del cfg["containerdConfigPatches"]
    yaml.safe_dump(cfg, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

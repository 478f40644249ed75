"""A fleet of SIMULATED TidbClusters on the local tier, for load tests and the benchmark.

``size`` more TidbClusters (tidb-operator's objects, stood in for) in a
namespace of their own, and one simulated PD process serving them all, each
at ``<url>/c/<cluster>``: point the operator at them with
``CHAOSDEMO_PD_URL_TEMPLATE=<template>``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import client, config

from chaosdemo_local.cluster import tidb_operator
from chaosdemo_local.cluster.control_plane import free_port
from chaosdemo_local.cluster.env import LocalEnv, Process
from chaosdemo_local.cluster.tidb_pki import client_secret, make_cluster_pki

__all__ = ["Fleet"]


@dataclass
class Fleet:
    env: LocalEnv
    size: int
    namespace: str = "tidb-fleet"
    prefix: str = "fleet"
    sim: Process | None = None
    template: str = ""
    names: list[str] = field(default_factory=list)
    tls: bool = False  # spec.tlsCluster.enabled: the simulated PD serves TLS only; the client Secrets exist

    def start(self, timeout: float = 240) -> Fleet:
        self.names = [f"{self.prefix}-{i}" for i in range(self.size)]
        asyncio.run(self._install())
        port = free_port()
        tls = []
        if self.tls:  # one CA for the fleet: the certificates name 127.0.0.1, where the simulated PD listens
            pki = make_cluster_pki(self.env.workdir / f"pki-{self.prefix}", self.names[0], self.namespace)
            secrets = [client_secret(pki, name, self.namespace) for name in self.names]
            self.env.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                    "items": secrets}))
            tls = ["--tls-dir", str(pki)]
        self.sim = self.env.spawn(f"pd-sim-{self.prefix}", [
            sys.executable, "-m", "chaosdemo_local.cli", "pd-sim", "--kubeconfig", str(self.env.kubeconfig),
            "--port", str(port), "--cluster", ",".join(self.names), "--namespace", self.namespace,
            "--time-scale", str(self.env.time_scale), "--docker-host", self.env.docker_host, *tls])
        # http even with TLS: the operator's default template is http, and a TLS cluster must switch it to https
        self.template = f"http://127.0.0.1:{port}/c/{{name}}"
        deadline = time.monotonic() + timeout
        while not all(self.ready(n) for n in self.names):
            if time.monotonic() > deadline or self.sim.popen.poll() is not None:
                raise TimeoutError(f"the fleet of {self.size} was not Ready in {timeout}s:\n"
                                   f"{self.sim.output()[-2000:]}")
            time.sleep(1)
        return self

    async def _install(self) -> None:
        cfg = client.Configuration()
        await config.load_kube_config(config_file=str(self.env.kubeconfig), client_configuration=cfg)
        async with client.ApiClient(configuration=cfg) as api:
            for name in self.names:
                await tidb_operator.install(api, self.namespace, name, tls=self.tls)

    def ready(self, name: str) -> bool:
        tc = self.env.kubectl_json("get", "tidbcluster", name, "-n", self.namespace)
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (tc.get("status") or {}).get("conditions", []))

    def demos(self, **spec: Any) -> list[dict[str, Any]]:
        """One ChaosDemo per cluster, in the fleet's namespace (a demo may always target its own)."""
        return [{"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
                 "metadata": {"name": f"demo-{name}", "namespace": self.namespace},
                 "spec": {"cluster": {"name": name}, "canary": {"enabled": False}, **spec}} for name in self.names]

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        self.env.kubectl("delete", "namespace", self.namespace, "--wait=true", "--timeout=120s", check=False)

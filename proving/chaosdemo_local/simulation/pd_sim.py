"""SIMULATED PD for the local tier: the PD model's stores follow the TiKV pods, served over HTTP.

This is a simulation for the local tier, not PD. kwok runs no TiKV processes,
so ``PDSim`` plays them from what the real API server shows of one
TidbCluster's TiKV pods: a store heartbeats every 10 s while its pod is
Running and Ready and its node is up (after a TiKV start-up delay), and keeps
its id when the pod comes back under the same name. Everything else (states,
regions, leaders, PD's JSON and HTTP API) is ``pd_model``'s, shared with the
kind tier's PD stand-in pod.

It also plays tidb-operator's status sync: ``status.tikv.stores`` and the
Ready condition of the TidbCluster, from these stores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from chaosdemo.core.snapshot import COMPONENT_LABEL, INSTANCE_LABEL, restart_count
from chaosdemo_local.simulation.pd_api import answer, stores_json
from chaosdemo_local.simulation.pd_model import PDModel, Timing, go_duration, parse_go_duration, tc_status

__all__ = ["PDSim", "Timing", "build_app", "go_duration", "main", "parse_go_duration"]

log = logging.getLogger("pd-sim")


@dataclass
class PDSim(PDModel):
    down_nodes: set[str] = field(default_factory=set)
    forced_down: set[str] = field(default_factory=set)  # marked down through /_sim, whatever Docker says
    node_boots: dict[str, str] = field(default_factory=dict)  # node -> when its container last started
    pd_node: str = ""  # the node of the PD pod: PD is unreachable while it is down
    store_nodes: dict[str, str] = field(default_factory=dict)  # TiKV pod -> its node, as last seen

    def sql_stores(self) -> dict[str, str]:
        """Each store as the SIMULATED TiDB sees it: serving, stopped (its machine is down: nothing answers)
        or gone (its process is not running: connections are refused)."""
        return {str(st.id): "serving" if st.serving_since is not None and not st.booting
                else "stopped" if self.store_nodes.get(name) in self.down_nodes else "gone"
                for name, st in self.stores.items()}

    def _serving(self, pod: dict[str, Any]) -> bool:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        node = pod.get("spec", {}).get("nodeName") or ""
        return (not meta.get("deletionTimestamp") and status.get("phase") == "Running" and ready
                and node not in self.down_nodes)

    def observe_pods(self, pods: list[dict[str, Any]], now: float) -> None:
        """Advance the simulation to ``now`` given the TiKV pods the API server shows."""
        t = self.timing
        serving = {p["metadata"]["name"]: self._serving(p) for p in pods}
        self.store_nodes.update({p["metadata"]["name"]: p.get("spec", {}).get("nodeName") or "" for p in pods})
        # A TiKV process is its pod's uid, its container restarts and its node's boot.
        incarnations = {
            p["metadata"]["name"]: "/".join((
                p["metadata"].get("uid", ""),
                str(restart_count(p)),
                self.node_boots.get(p.get("spec", {}).get("nodeName") or "", ""),
            ))
            for p in pods
        }
        for name in sorted(serving):
            if name not in self.stores:
                st = self.register(name, f"{name}.{self.cluster}-tikv-peer.{self.namespace}.svc:20160")
                log.info("store %s registered for %s", st.id, st.address)
        for name, st in self.stores.items():
            up = serving.get(name, False)
            if up and st.serving_since is not None and incarnations.get(name) != st.incarnation:
                # A new pod, or the container restarted: a new TiKV process.
                st.serving_since = None
                st.silent_since = now
            if up:
                st.incarnation = incarnations[name]
            if up and st.serving_since is None:
                st.serving_since = now
                st.silent_since = None
                st.booting = True
                st.next_heartbeat = now + t.s("startup")
            elif not up and st.serving_since is not None:
                st.serving_since = None
                st.silent_since = now
                log.info("store %s (%s) stopped heartbeating", st.id, name)
        self.beat(now)

    def beat(self, now: float) -> None:
        """Every serving store's heartbeats up to ``now``, on its own schedule.

        A TiKV process heartbeats whether or not anyone looks: the simulation
        plays them at every answer of PD's API, not only at its ticks, so a
        tick held up by a busy API server never makes a running store look
        Disconnected. What the ticks bring is news of the pods and nodes.
        """
        interval = self.timing.s("heartbeat")
        for st in self.stores.values():
            if st.serving_since is None or now < st.next_heartbeat:
                continue
            if st.booting:
                # The first heartbeat of a new TiKV process; a store that was
                # here before must first catch up on the Raft log it missed.
                st.booting = False
                st.start_ts = st.next_heartbeat
                if st.last_heartbeat:
                    st.caught_up_at = st.next_heartbeat + self.timing.s("catch_up")
            at = st.next_heartbeat + interval * ((now - st.next_heartbeat) // interval)
            st.last_heartbeat = at
            st.next_heartbeat = at + interval
        self.advance(now)

    def settled(self, now: float) -> dict[str, Any]:
        """The simulation's own word on each store: which pod (uid) its TiKV process is, and whether it is
        settled (serving, past its first heartbeat and caught up). Tests wait for this level instead of a
        quiet spell: PD's answers alone look healthy while a restarted store has not yet heartbeated."""
        out = {}
        for name, st in self.stores.items():
            why = ("not serving" if st.serving_since is None else "starting" if st.booting
                   else "catching up" if now < st.caught_up_at else "")
            out[name] = {"id": st.id, "uid": st.incarnation.split("/", 1)[0], "why": why}
        return {"stores": out, "regions": len(self.regions)}


def build_app(sim: PDSim, clock: Any = time.time) -> web.Application:
    """PD's HTTP API (the model's) and the simulation's own control route."""

    async def pd_api(req: web.Request) -> web.Response:
        # The path from PD's API root on, also when served under a cluster's prefix.
        path = "/pd/api/v1/" + req.match_info["tail"] + (f"?{req.query_string}" if req.query_string else "")
        now = clock()
        sim.beat(now)
        status, payload = answer(sim, req.method, path, await req.read(), now)
        return web.json_response(payload, status=status)

    async def state(req: web.Request) -> web.Response:
        """Simulation control: each store's pod and whether it has settled (see PDSim.settled)."""
        now = clock()
        sim.beat(now)
        return web.json_response(sim.settled(now))

    async def node_state(req: web.Request) -> web.Response:
        """Simulation control: a node's machine went down or came back (used by the node agent)."""
        node, state = req.match_info["node"], req.match_info["state"]
        for nodes in (sim.down_nodes, sim.forced_down):
            (nodes.add if state == "down" else nodes.discard)(node)
        return web.json_response({"downNodes": sorted(sim.down_nodes)})

    @web.middleware
    async def pd_down(request: web.Request, handler: Any) -> web.StreamResponse:
        if sim.pd_node and sim.pd_node in sim.down_nodes and not request.path.startswith("/_sim/"):
            return web.json_response(f"PD is unavailable: its node {sim.pd_node} is down (SIMULATED)", status=503)
        return await handler(request)

    app = web.Application(middlewares=[pd_down])
    app.router.add_post("/_sim/nodes/{node}/{state}", node_state)
    app.router.add_get("/_sim/state", state)
    app.router.add_route("*", "/pd/api/v1/{tail:.*}", pd_api)
    return app


async def _node_containers(docker: Any, nodes: set[str]) -> dict[str, tuple[bool, str]]:
    """Docker's view of the node containers (running, started at); nodes without one are left out."""
    import aiodocker

    out = {}
    for node in nodes:
        try:
            info = await docker.containers.container(node).show()
        except aiodocker.DockerError:
            continue
        state = info.get("State", {})
        out[node] = (bool(state.get("Running")), str(state.get("StartedAt", "")))
    return out


def _instance(pod: dict[str, Any]) -> tuple[str, str]:
    labels = pod.get("metadata", {}).get("labels") or {}
    return labels.get(INSTANCE_LABEL, ""), labels.get(COMPONENT_LABEL, "")


async def _list_pods(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """Every PD and TiKV pod of the namespace, as the API server's JSON (no model objects)."""
    resp = await client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"{COMPONENT_LABEL} in (pd,tikv)", _preload_content=False)
    async with resp:
        if resp.status != 200:
            raise ApiException(status=resp.status, reason=resp.reason)
        items: list[dict[str, Any]] = json.loads(await resp.read()).get("items") or []
    return items


async def follow_clusters(sims: list[PDSim], api: client.ApiClient, tick: float, stop: asyncio.Event,
                          docker: Any = None) -> None:
    """Advance every simulated cluster from one look at the API server (and Docker) per tick.

    One list of the namespace's PD and TiKV pods and one look at each node
    container serve all the clusters: a look per cluster made the simulation,
    not the operator, the API server's heaviest client with many clusters.
    """
    custom = client.CustomObjectsApi(api)
    last_status: dict[str, float] = {}
    # tidb-operator's status of each cluster: many clusters refresh theirs less often.
    status_every = max(1.0, tick * 4) * max(1.0, len(sims) / 10)
    namespace = sims[0].namespace
    while not stop.is_set():
        try:
            pods = await _list_pods(api, namespace)
            by_cluster: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for p in pods:
                instance, component = _instance(p)
                by_cluster.setdefault(instance, {}).setdefault(component, []).append(p)
            if docker is not None:
                # TiKV runs inside its node: a node container that is not running
                # stops its stores at once; one that started again restarts them.
                nodes = {p.get("spec", {}).get("nodeName") or "" for p in pods} - {""}
                states = await _node_containers(docker, nodes.union(*(sim.node_boots for sim in sims)))
            now = time.time()
            for sim in sims:
                mine = by_cluster.get(sim.cluster, {})
                if docker is not None:
                    sim.pd_node = next((p.get("spec", {}).get("nodeName") or "" for p in mine.get("pd", [])), "")
                    sim.down_nodes = {n for n, (running, _) in states.items() if not running} | sim.forced_down
                    sim.node_boots.update({n: started for n, (running, started) in states.items() if running})
                sim.observe_pods(mine.get("tikv", []), now)
            for sim in sims:
                if now - last_status.get(sim.cluster, 0.0) >= status_every:
                    last_status[sim.cluster] = now
                    tc = await custom.get_namespaced_custom_object(
                        "pingcap.com", "v1alpha1", sim.namespace, "tidbclusters", sim.cluster)
                    await custom.patch_namespaced_custom_object_status(
                        "pingcap.com", "v1alpha1", sim.namespace, "tidbclusters", sim.cluster,
                        {"status": tc_status(stores_json(sim, now), tc.get("status") or {}, now)},
                        _content_type="application/merge-patch+json")
        except ApiException as e:
            log.warning("API server: %s %s", e.status, e.reason)
        except Exception:
            log.exception("simulation step failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)


async def _serve_sql(args: argparse.Namespace, sim: PDSim, timing: Timing) -> Any:
    """The SIMULATED TiDB of the first cluster, for the SQL canary, if ``--sql-port`` asks for it."""
    if not args.sql_port:
        return None
    from chaosdemo_local.simulation.tidb_sql import SimulatedTiDB, TiDBModel

    sql = SimulatedTiDB(TiDBModel(sim.sql_stores, election_seconds=timing.s("election")))
    await sql.start(args.host, args.sql_port)
    log.info("SIMULATED TiDB (the canary's statements only) for %s on %s:%s", sim.cluster, args.host, args.sql_port)
    return sql


def _server_tls(tls_dir: str) -> ssl.SSLContext | None:
    """TLS only, asking for a client certificate of the cluster's CA, as PD does with spec.tlsCluster.enabled
    (tikv/pd ``pkg/utils/grpcutil/grpcutil.go``: ``ClientAuth: tls.RequireAndVerifyClientCert``)."""
    if not tls_dir:
        return None
    d = Path(tls_dir)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(d / "ca.crt"))
    ctx.load_cert_chain(d / "ca-pd.crt", d / "ca-pd.key")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def serve(args: argparse.Namespace) -> None:
    """One simulated PD per cluster of ``--cluster`` (comma-separated), all in this process.

    Each cluster's PD API is at ``/c/<cluster>/pd/api/v1/`` (the operator's PD URL template is then
    ``<url>/c/{name}``); with one cluster, also at ``/pd/api/v1/``.
    """
    timing = Timing(scale=args.time_scale)
    names = [n.strip() for n in args.cluster.split(",") if n.strip()]
    sims = [PDSim(cluster=name, namespace=args.namespace, timing=timing) for name in names]
    cfg = client.Configuration()
    await config.load_kube_config(config_file=args.kubeconfig, client_configuration=cfg)
    api = client.ApiClient(configuration=cfg)
    app = build_app(sims[0]) if len(sims) == 1 else web.Application()
    for sim in sims:
        app.add_subapp(f"/c/{sim.cluster}/", build_app(sim))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=_server_tls(args.tls_dir))
    await site.start()
    log.info("SIMULATED PD for %s in %s on %s://%s:%s (time scale %s: heartbeat %.1fs, Disconnected after %.1fs)",
             ", ".join(names), args.namespace, "https" if args.tls_dir else "http", args.host, args.port,
             timing.scale, timing.s("heartbeat"), timing.s("disconnect"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tick = min(0.5, timing.s("heartbeat") / 10)
    sql = await _serve_sql(args, sims[0], timing)
    docker = None
    if args.docker_host:
        import aiodocker

        docker = aiodocker.Docker(url=args.docker_host)
        log.info("node containers are read from Docker at %s", args.docker_host)
    try:
        await follow_clusters(sims, api, tick, stop, docker)
    finally:
        if sql is not None:
            await sql.close()
        await runner.cleanup()
        await api.close()
        if docker is not None:
            await docker.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="chaosdemo-local pd-sim", description="SIMULATED PD for the local tier")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    p.add_argument("--cluster", default="basic", help="a TidbCluster, or several, comma-separated")
    p.add_argument("--namespace", default="tidb-cluster")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2379)
    p.add_argument("--sql-port", type=int, default=0, help="serve a SIMULATED TiDB's MySQL protocol here")
    p.add_argument("--docker-host", default="", help="read node containers' state from this Docker engine")
    p.add_argument("--tls-dir", default="", help="serve TLS only with this cluster PKI (cluster/tidb_pki.py)")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiplies every PD/TiKV time; 1 is real time")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pd-sim %(levelname)s %(message)s")
    asyncio.run(serve(args))
    return 0

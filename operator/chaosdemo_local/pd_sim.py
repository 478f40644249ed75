"""SIMULATED PD: PD's HTTP API with PD's JSON, its TiKV stores following the TiKV pods.

This is a simulation for the local tier, not PD. It watches the TiKV pods of
one TidbCluster through the real API server and keeps a store per pod
address, with PD's and TiKV's timing (all multiplied by ``time_scale``):

- a store heartbeats every 10 s while its pod is Running and Ready and its
  node is up (after a TiKV start-up delay), and keeps its id when the pod
  comes back under the same name;
- ``state_name`` is Disconnected 20 s after the last heartbeat and Down after
  ``max-store-down-time`` (30 m; settable through ``POST /pd/api/v1/config``);
- Raft leaders move off a silent store after an election timeout and move
  back, a few at a time, once it has caught up;
- a returning store's peers are pending while it catches up; a leader reports
  a peer down after TiKV's ``max-peer-down-duration`` (10 m).

It also plays tidb-operator's status sync: ``status.tikv.stores`` and the
Ready condition of the TidbCluster, from these stores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

__all__ = ["PDSim", "SimStore", "Timing", "go_duration", "main"]

log = logging.getLogger("pd-sim")

CLUSTER_ID = 7311864592512735234
MEMBER_ID = 1428427862495950874


@dataclass(frozen=True)
class Timing:
    """PD's and TiKV's times in seconds, before scaling."""

    scale: float = 1.0
    heartbeat: float = 10.0  # raftstore.pd-store-heartbeat-tick-interval
    disconnect: float = 20.0  # PD storeDisconnectDuration
    max_store_down: float = 1800.0  # schedule.max-store-down-time
    max_peer_down: float = 600.0  # raftstore.max-peer-down-duration
    election: float = 10.0  # time for Raft to elect new leaders off a silent store
    startup: float = 5.0  # TiKV process start until its first heartbeat
    catch_up: float = 8.0  # a returning store applies the log it missed
    rebalance_step: float = 5.0  # leader balance moves a few leaders this often

    def s(self, name: str) -> float:
        return float(getattr(self, name)) * self.scale


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String, as PD's ``uptime`` is."""
    if seconds < 1:
        return f"{seconds * 1000:.6g}ms"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    secs = f"{s:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{int(h)}h{int(m)}m{secs}"
    if m:
        return f"{int(m)}m{secs}"
    return secs


def _rfc3339(epoch: float, nanos: bool = False) -> str:
    t = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    if nanos:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SimStore:
    id: int
    pod: str
    address: str
    start_ts: float = 0.0
    last_heartbeat: float = 0.0
    serving_since: float | None = None  # the TiKV process is up since
    silent_since: float | None = None  # the process stopped
    next_heartbeat: float = 0.0
    caught_up_at: float = 0.0
    booting: bool = False
    incarnation: tuple[str, int, str] = ("", 0, "")  # pod uid, restarts, node boot of the running TiKV


@dataclass
class Region:
    id: int
    start_key: str
    end_key: str
    peers: dict[int, int]  # store id -> peer id
    leader_store: int
    conf_ver: int = 5
    version: int = 3


@dataclass
class PDSim:
    cluster: str
    namespace: str
    timing: Timing = field(default_factory=Timing)
    regions_count: int = 48
    stores: dict[str, SimStore] = field(default_factory=dict)  # by pod name
    regions: list[Region] = field(default_factory=list)
    _next_id: int = 1
    down_nodes: set[str] = field(default_factory=set)
    forced_down: set[str] = field(default_factory=set)  # marked down through /_sim, whatever Docker says
    node_boots: dict[str, str] = field(default_factory=dict)  # node -> when its container last started
    pd_node: str = ""  # the node of the PD pod: PD is unreachable while it is down
    max_store_down: float | None = None
    last_rebalance: float = 0.0

    def alloc(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # ------------------------------------------------------------ state machine

    def state_name(self, st: SimStore, now: float) -> str:
        age = now - st.last_heartbeat
        if age > (self.max_store_down if self.max_store_down is not None else self.timing.s("max_store_down")):
            return "Down"
        if age > self.timing.s("disconnect"):
            return "Disconnected"
        return "Up"

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
        incarnations = {
            p["metadata"]["name"]: (
                p["metadata"].get("uid", ""),
                sum(int(c.get("restartCount", 0)) for c in p.get("status", {}).get("containerStatuses") or []),
                self.node_boots.get(p.get("spec", {}).get("nodeName") or "", ""),
            )
            for p in pods
        }
        for name in sorted(serving):
            if name not in self.stores:
                address = f"{name}.{self.cluster}-tikv-peer.{self.namespace}.svc:20160"
                self.stores[name] = SimStore(id=self.alloc(), pod=name, address=address)
                log.info("store %s registered for %s", self.stores[name].id, address)
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
            if st.serving_since is not None and now >= st.next_heartbeat:
                if st.booting:
                    # The first heartbeat of a new TiKV process; a store that was
                    # here before must first catch up on the Raft log it missed.
                    st.booting = False
                    st.start_ts = now
                    if st.last_heartbeat:
                        st.caught_up_at = now + t.s("catch_up")
                st.last_heartbeat = now
                st.next_heartbeat = now + t.s("heartbeat")
        if not self.regions and len(self.stores) >= 3 and all(
            s.last_heartbeat for s in self.stores.values()
        ):
            self._bootstrap_regions()
        self._move_leaders(now)

    def _bootstrap_regions(self) -> None:
        ids = sorted(s.id for s in self.stores.values())
        for i in range(self.regions_count):
            chosen = [ids[(i + k) % len(ids)] for k in range(min(3, len(ids)))]
            start = "" if i == 0 else f"7480000000000000FF{i:02X}00000000000000F8"
            end = "" if i == self.regions_count - 1 else f"7480000000000000FF{i + 1:02X}00000000000000F8"
            self.regions.append(Region(id=self.alloc(), start_key=start, end_key=end,
                                       peers={sid: self.alloc() for sid in chosen}, leader_store=chosen[0]))

    def _healthy_ids(self, now: float) -> set[int]:
        return {s.id for s in self.stores.values()
                if s.serving_since is not None and s.last_heartbeat and now >= s.caught_up_at}

    def _move_leaders(self, now: float) -> None:
        t = self.timing
        by_id = {s.id: s for s in self.stores.values()}
        healthy = self._healthy_ids(now)
        for r in self.regions:
            st = by_id.get(r.leader_store)
            silent = st is None or (st.silent_since is not None and now - st.silent_since >= t.s("election"))
            if silent:
                candidates = [sid for sid in r.peers if sid in healthy]
                if candidates:
                    r.leader_store = min(candidates, key=lambda sid: self._leaders(sid))
        if now - self.last_rebalance >= t.s("rebalance_step") and healthy:
            self.last_rebalance = now
            for _ in range(4):  # a few leaders per step, as balance-leader does
                counts = {sid: self._leaders(sid) for sid in healthy}
                lo, hi = min(counts, key=counts.__getitem__), max(counts, key=counts.__getitem__)
                if counts[hi] - counts[lo] <= 1:
                    break
                r = next((r for r in self.regions if r.leader_store == hi and lo in r.peers), None)
                if r is None:
                    break
                r.leader_store = lo

    def _leaders(self, store_id: int) -> int:
        return sum(1 for r in self.regions if r.leader_store == store_id)

    # ------------------------------------------------------------ PD JSON

    def store_json(self, st: SimStore, now: float) -> dict[str, Any]:
        host = st.address.rsplit(":", 1)[0]
        leaders = self._leaders(st.id)
        regions = sum(1 for r in self.regions if st.id in r.peers)
        pending = len(self._pending_regions(now, st.id))
        store: dict[str, Any] = {
            "id": st.id,
            "address": st.address,
            "version": "8.5.7",
            "peer_address": st.address,
            "status_address": f"{host}:20180",
            "git_hash": "c3b6bd0c5e4a3f0d7d2f1a9b8e6d5c4b3a291807",
            "start_timestamp": int(st.start_ts),
            "deploy_path": "/",
            "last_heartbeat": int(st.last_heartbeat * 1e9),
            "node_state": 1,
            "state_name": self.state_name(st, now),
        }
        status: dict[str, Any] = {
            "capacity": "10GiB",
            "available": "9.2GiB",
            "used_size": f"{100 + regions * 2.5:.1f}MiB",
            "leader_count": leaders,
            "leader_weight": 1,
            "leader_score": leaders,
            "leader_size": leaders,
            "region_count": regions,
            "region_weight": 1,
            "region_score": round(regions * 1.05, 2),
            "region_size": regions,
            "slow_score": 1,
            "start_ts": _rfc3339(st.start_ts),
            "last_heartbeat_ts": _rfc3339(st.last_heartbeat, nanos=True),
            "uptime": go_duration(max(0.0, st.last_heartbeat - st.start_ts)),
        }
        if pending:
            status["pending_peer_count"] = pending
        return {"store": store, "status": status}

    def stores_json(self, now: float, state: str | None = None) -> dict[str, Any]:
        out = [self.store_json(s, now) for s in sorted(self.stores.values(), key=lambda s: s.id)]
        if state:
            out = [s for s in out if s["store"]["state_name"].lower() == state.lower()]
        return {"count": len(out), "stores": out}

    def _pending_regions(self, now: float, only_store: int | None = None) -> list[Region]:
        by_id = {s.id: s for s in self.stores.values()}
        catching = {sid for sid, s in by_id.items()
                    if s.serving_since is not None and s.last_heartbeat and now < s.caught_up_at}
        if only_store is not None:
            catching &= {only_store}
        return [r for r in self.regions if catching & set(r.peers) and r.leader_store not in catching]

    def _down_peers(self, r: Region, now: float) -> list[tuple[int, int, int]]:
        by_id = {s.id: s for s in self.stores.values()}
        out = []
        for sid, pid in r.peers.items():
            st = by_id.get(sid)
            if st is None or sid == r.leader_store:
                continue
            silent = now - st.last_heartbeat
            if st.serving_since is None and silent >= self.timing.s("max_peer_down"):
                out.append((pid, sid, int(silent)))
        return out

    def region_json(self, r: Region, now: float) -> dict[str, Any]:
        def peer(sid: int) -> dict[str, Any]:
            return {"id": r.peers[sid], "store_id": sid, "role_name": "Voter"}

        out: dict[str, Any] = {
            "id": r.id,
            "start_key": r.start_key,
            "end_key": r.end_key,
            "epoch": {"conf_ver": r.conf_ver, "version": r.version},
            "peers": [peer(sid) for sid in sorted(r.peers)],
            "leader": peer(r.leader_store),
            "cpu_usage": 0,
            "written_bytes": 0,
            "read_bytes": 0,
            "written_keys": 0,
            "read_keys": 0,
            "approximate_size": 1,
            "approximate_keys": 0,
            "approximate_kv_size": 0,
        }
        down = self._down_peers(r, now)
        if down:
            out["down_peers"] = [{"peer": {"id": pid, "store_id": sid, "role_name": "Voter"}, "down_seconds": secs}
                                 for pid, sid, secs in down]
        pending = [sid for sid in r.peers if r in self._pending_regions(now, sid)]
        if pending:
            out["pending_peers"] = [peer(sid) for sid in pending]
        return out

    def region_check(self, check: str, now: float) -> dict[str, Any] | None:
        if check == "down-peer":
            regions = [r for r in self.regions if self._down_peers(r, now)]
        elif check == "pending-peer":
            regions = self._pending_regions(now)
        elif check in ("miss-peer", "offline-peer", "extra-peer", "learner-peer", "empty-region",
                       "oversized-region", "undersized-region"):
            regions = []  # 3 stores, 3 replicas: nowhere to add or remove a peer
        else:
            return None
        return {"count": len(regions), "regions": [self.region_json(r, now) for r in regions]}

    def config_json(self) -> dict[str, Any]:
        msd = self.max_store_down if self.max_store_down is not None else self.timing.s("max_store_down")
        return {
            "client-urls": "http://0.0.0.0:2379",
            "schedule": {"max-store-down-time": go_duration(msd), "leader-schedule-limit": 4,
                         "region-schedule-limit": 2048, "replica-schedule-limit": 64},
            "replication": {"max-replicas": 3, "location-labels": "", "strictly-match-label": "false",
                            "enable-placement-rules": "true", "isolation-level": ""},
        }


def _parse_go_duration(text: str) -> float:
    total, num = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
        elif text[i:i + 2] == "ms":
            total += float(num) / 1000
            num, i = "", i + 1
        elif ch in units:
            total += float(num) * units[ch]
            num = ""
        else:
            raise ValueError(f"bad duration {text!r}")
        i += 1
    if num:
        raise ValueError(f"bad duration {text!r}")
    return total


def build_app(sim: PDSim, clock: Any = time.time) -> web.Application:
    member = {
        "name": f"{sim.cluster}-pd-0",
        "member_id": MEMBER_ID,
        "peer_urls": [f"http://{sim.cluster}-pd-0.{sim.cluster}-pd-peer.{sim.namespace}.svc:2380"],
        "client_urls": [f"http://{sim.cluster}-pd-0.{sim.cluster}-pd-peer.{sim.namespace}.svc:2379"],
        "deploy_path": "/",
        "binary_version": "v8.5.7",
        "git_hash": "0b0f16a3e8d0f2c1b4a5e6d7c8b9a0f1e2d3c4b5",
    }
    routes = web.RouteTableDef()

    @routes.get("/pd/api/v1/stores")
    async def stores(req: web.Request) -> web.Response:
        return web.json_response(sim.stores_json(clock()))

    @routes.get("/pd/api/v1/stores/check")
    async def stores_check(req: web.Request) -> web.Response:
        return web.json_response(sim.stores_json(clock(), req.query.get("state")))

    @routes.get("/pd/api/v1/store/{id}")
    async def store(req: web.Request) -> web.Response:
        sid = int(req.match_info["id"]) if req.match_info["id"].isdigit() else -1
        st = next((s for s in sim.stores.values() if s.id == sid), None)
        if st is None:
            return web.json_response(f"store id {req.match_info['id']} not found", status=404)
        return web.json_response(sim.store_json(st, clock()))

    @routes.get("/pd/api/v1/health")
    async def health(req: web.Request) -> web.Response:
        return web.json_response([{"name": member["name"], "member_id": MEMBER_ID,
                                   "client_urls": member["client_urls"], "health": True}])

    @routes.get("/pd/api/v1/members")
    async def members(req: web.Request) -> web.Response:
        return web.json_response({"header": {"cluster_id": CLUSTER_ID}, "members": [member],
                                  "leader": member, "etcd_leader": member})

    @routes.get("/pd/api/v1/cluster")
    async def cluster(req: web.Request) -> web.Response:
        return web.json_response({"id": CLUSTER_ID, "max_peer_count": 3})

    @routes.get("/pd/api/v1/config/replicate")
    async def replicate(req: web.Request) -> web.Response:
        return web.json_response(sim.config_json()["replication"])

    @routes.get("/pd/api/v1/config")
    async def get_config(req: web.Request) -> web.Response:
        return web.json_response(sim.config_json())

    @routes.post("/pd/api/v1/config")
    async def set_config(req: web.Request) -> web.Response:
        body = await req.json()
        for key in ("max-store-down-time", "schedule.max-store-down-time"):
            if key in body:
                try:
                    sim.max_store_down = _parse_go_duration(str(body[key]))
                except ValueError as e:
                    return web.json_response(str(e), status=400)
        return web.json_response("The config is updated.")

    @routes.get("/pd/api/v1/regions/check/{check}")
    async def regions_check(req: web.Request) -> web.Response:
        out = sim.region_check(req.match_info["check"], clock())
        if out is None:
            return web.json_response("unknown check", status=404)
        return web.json_response(out)

    @routes.get("/pd/api/v1/regions")
    async def regions(req: web.Request) -> web.Response:
        now = clock()
        return web.json_response({"count": len(sim.regions), "regions": [sim.region_json(r, now) for r in sim.regions]})

    @routes.post("/_sim/nodes/{node}/{state}")
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
    app.add_routes(routes)
    return app


def _tc_status(sim: PDSim, now: float, prev: dict[str, Any]) -> dict[str, Any]:
    """What tidb-operator's status sync would write, from PD's view of the stores."""
    old = (prev.get("tikv") or {}).get("stores") or {}
    stores = {}
    for st in sim.stores.values():
        state = sim.state_name(st, now)
        was = old.get(str(st.id), {})
        stores[str(st.id)] = {
            "id": str(st.id), "podName": st.pod, "ip": st.address.rsplit(":", 1)[0],
            "leaderCount": sim._leaders(st.id), "state": state,
            "lastTransitionTime": was.get("lastTransitionTime") if was.get("state") == state
            else _rfc3339(now),
        }
    not_up = any(s["state"] != "Up" for s in stores.values())
    cond = {"type": "Ready", "status": "False" if not_up else "True",
            "reason": "TiKVStoreNotUp" if not_up else "Ready",
            "message": "TiKV store(s) are not up" if not_up else "TiDB cluster is fully up and running",
            "lastUpdateTime": _rfc3339(now)}
    prev_cond = next((c for c in prev.get("conditions") or [] if c.get("type") == "Ready"), {})
    cond["lastTransitionTime"] = prev_cond.get("lastTransitionTime") if prev_cond.get("status") == cond["status"] \
        else _rfc3339(now)
    return {"clusterID": str(CLUSTER_ID), "conditions": [cond],
            "tikv": {"phase": "Normal", "synced": True, "bootStrapped": True, "stores": stores}}


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


async def follow_cluster(sim: PDSim, api: client.ApiClient, tick: float, stop: asyncio.Event,
                         docker: Any = None) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    selector = f"app.kubernetes.io/component=tikv,app.kubernetes.io/instance={sim.cluster}"
    last_status = 0.0
    while not stop.is_set():
        try:
            pods = api.sanitize_for_serialization(
                await core.list_namespaced_pod(sim.namespace, label_selector=selector))["items"]
            if docker is not None:
                # TiKV runs inside its node: a node container that is not running
                # stops its stores at once; one that started again restarts them.
                pd_selector = f"app.kubernetes.io/component=pd,app.kubernetes.io/instance={sim.cluster}"
                pd_pods = api.sanitize_for_serialization(
                    await core.list_namespaced_pod(sim.namespace, label_selector=pd_selector))["items"]
                sim.pd_node = next((p.get("spec", {}).get("nodeName") or "" for p in pd_pods), "")
                nodes = {p.get("spec", {}).get("nodeName") or "" for p in pods} - {""}
                nodes.add(sim.pd_node)
                states = await _node_containers(docker, nodes | set(sim.node_boots))
                sim.down_nodes = {n for n, (running, _) in states.items() if not running} | sim.forced_down
                sim.node_boots.update({n: started for n, (running, started) in states.items() if running})
            now = time.time()
            sim.observe_pods(pods, now)
            if now - last_status >= max(1.0, tick * 4):
                last_status = now
                tc = await custom.get_namespaced_custom_object(
                    "pingcap.com", "v1alpha1", sim.namespace, "tidbclusters", sim.cluster)
                await custom.patch_namespaced_custom_object_status(
                    "pingcap.com", "v1alpha1", sim.namespace, "tidbclusters", sim.cluster,
                    {"status": _tc_status(sim, now, tc.get("status") or {})},
                    _content_type="application/merge-patch+json")
        except ApiException as e:
            log.warning("API server: %s %s", e.status, e.reason)
        except Exception:
            log.exception("simulation step failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)


async def serve(args: argparse.Namespace) -> None:
    timing = Timing(scale=args.time_scale)
    sim = PDSim(cluster=args.cluster, namespace=args.namespace, timing=timing)
    cfg = client.Configuration()
    await config.load_kube_config(config_file=args.kubeconfig, client_configuration=cfg)
    api = client.ApiClient(configuration=cfg)
    runner = web.AppRunner(build_app(sim), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    log.info("SIMULATED PD for %s/%s on http://%s:%s (time scale %s: heartbeat %.1fs, Disconnected after %.1fs)",
             args.namespace, args.cluster, args.host, args.port, timing.scale, timing.s("heartbeat"),
             timing.s("disconnect"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tick = min(0.5, timing.s("heartbeat") / 10)
    docker = None
    if args.docker_host:
        import aiodocker

        docker = aiodocker.Docker(url=args.docker_host)
        log.info("node containers are read from Docker at %s", args.docker_host)
    try:
        await follow_cluster(sim, api, tick, stop, docker)
    finally:
        await runner.cleanup()
        await api.close()
        if docker is not None:
            await docker.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="chaosdemo-local pd-sim", description="SIMULATED PD for the local tier")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    p.add_argument("--cluster", default="basic")
    p.add_argument("--namespace", default="tidb-cluster")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2379)
    p.add_argument("--docker-host", default="", help="read node containers' state from this Docker engine")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiplies every PD/TiKV time; 1 is real time")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pd-sim %(levelname)s %(message)s")
    asyncio.run(serve(args))
    return 0

"""SIMULATED PD's answers: its HTTP API's JSON, rendered from the model (``pd_model.PDModel``).

The shapes follow PD's own handlers (``server/api`` of tikv/pd v8.5): a store's ``store`` and ``status``
blocks, regions with their peers, the region checks, the members and the config. Standard library only,
as the model, so the same answers serve both tiers.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chaosdemo_local.simulation.pd_model import (
    CLUSTER_ID,
    MEMBER_ID,
    PDModel,
    Region,
    SimStore,
    go_duration,
    parse_go_duration,
    rfc3339,
)

__all__ = ["answer", "config_json", "member_json", "region_check", "stores_json"]


def store_json(m: PDModel, st: SimStore, now: float) -> dict[str, Any]:
    host = st.address.rsplit(":", 1)[0]
    leaders = m.leaders(st.id)
    regions = sum(1 for r in m.regions if st.id in r.peers)
    pending = len(m.pending_regions(now, st.id))
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
        "state_name": m.state_name(st, now),
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
        "start_ts": rfc3339(st.start_ts),
        "last_heartbeat_ts": rfc3339(st.last_heartbeat, nanos=True),
        "uptime": go_duration(max(0.0, st.last_heartbeat - st.start_ts)),
    }
    if pending:
        status["pending_peer_count"] = pending
    return {"store": store, "status": status}


def stores_json(m: PDModel, now: float, state: str | None = None) -> dict[str, Any]:
    out = [store_json(m, s, now) for s in sorted(m.stores.values(), key=lambda s: s.id)]
    if state:
        out = [s for s in out if s["store"]["state_name"].lower() == state.lower()]
    return {"count": len(out), "stores": out}


def region_json(m: PDModel, r: Region, now: float) -> dict[str, Any]:
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
    down = m.down_peers(r, now)
    if down:
        out["down_peers"] = [{"peer": {"id": pid, "store_id": sid, "role_name": "Voter"}, "down_seconds": secs}
                             for pid, sid, secs in down]
    pending = [sid for sid in r.peers if r in m.pending_regions(now, sid)]
    if pending:
        out["pending_peers"] = [peer(sid) for sid in pending]
    return out


def region_check(m: PDModel, check: str, now: float) -> dict[str, Any] | None:
    if check == "down-peer":
        regions = [r for r in m.regions if m.down_peers(r, now)]
    elif check == "pending-peer":
        regions = m.pending_regions(now)
    elif check in ("miss-peer", "offline-peer", "extra-peer", "learner-peer", "empty-region",
                   "oversized-region", "undersized-region"):
        regions = []  # 3 stores, 3 replicas: nowhere to add or remove a peer
    else:
        return None
    return {"count": len(regions), "regions": [region_json(m, r, now) for r in regions]}


def config_json(m: PDModel) -> dict[str, Any]:
    msd = m.max_store_down if m.max_store_down is not None else m.timing.s("max_store_down")
    return {
        "client-urls": "http://0.0.0.0:2379",
        "schedule": {"max-store-down-time": go_duration(msd), "leader-schedule-limit": 4,
                     "region-schedule-limit": 2048, "replica-schedule-limit": 64},
        "replication": {"max-replicas": m.max_replicas, "location-labels": "", "strictly-match-label": "false",
                        "enable-placement-rules": "true", "isolation-level": ""},
    }


def member_json(m: PDModel) -> dict[str, Any]:
    host = "http://" + (m.member_host or f"{m.cluster}-pd-0.{m.cluster}-pd-peer.{m.namespace}.svc")
    return {"name": m.member_name or f"{m.cluster}-pd-0", "member_id": MEMBER_ID,
            "peer_urls": [f"{host}:2380"],
            "client_urls": [f"{host}:2379"], "deploy_path": "/", "binary_version": "v8.5.7",
            "git_hash": "0b0f16a3e8d0f2c1b4a5e6d7c8b9a0f1e2d3c4b5"}


def answer(m: PDModel, method: str, target: str, body: bytes, now: float) -> tuple[int, Any]:
    """Answer one request of PD's HTTP API: (status, JSON value)."""
    url = urlsplit(target)
    path = url.path.rstrip("/")
    if method == "GET":
        got = _get(m, path, parse_qs(url.query), now)
        if got is not None:
            return got
    if method == "POST" and path.startswith("/pd/api/v1/store/") and path.endswith("/label"):
        # tidb-operator sets a store's labels from its node's; these stores keep none.
        return 200, "The store's label is updated."
    if method == "POST" and path == "/pd/api/v1/config":
        try:
            doc = json.loads(body or b"{}")
            for key in ("max-store-down-time", "schedule.max-store-down-time"):
                if key in doc:
                    m.max_store_down = parse_go_duration(str(doc[key]))
        except ValueError as e:
            return 400, str(e)
        return 200, "The config is updated."
    return 404, "404 page not found"


def _get(m: PDModel, path: str, params: dict[str, list[str]], now: float) -> tuple[int, Any] | None:
    query = {k: v[-1] for k, v in params.items()}
    member = member_json(m)
    if path == "/pd/api/v1/stores":
        # PD filters by metapb.StoreState (0 Up, 1 Offline, 2 Tombstone); without a filter it
        # leaves out Tombstone. These stores are never offline nor tombstones.
        states = params.get("state", ["0", "1"])
        return 200, stores_json(m, now) if "0" in states else {"count": 0, "stores": []}
    if path == "/pd/api/v1/stores/check":
        return 200, stores_json(m, now, query.get("state"))
    if path.startswith("/pd/api/v1/store/"):
        sid = path.rsplit("/", 1)[1]
        st = next((s for s in m.stores.values() if str(s.id) == sid), None)
        return (200, store_json(m, st, now)) if st else (404, f"store id {sid} not found")
    if path.startswith("/pd/api/v1/regions/check/"):
        out = region_check(m, path.rsplit("/", 1)[1], now)
        return (200, out) if out is not None else (404, "unknown check")
    fixed: dict[str, Any] = {
        "/pd/api/v1/health": lambda: [{"name": member["name"], "member_id": MEMBER_ID,
                                       "client_urls": member["client_urls"], "health": True}],
        "/pd/api/v1/members": lambda: {"header": {"cluster_id": CLUSTER_ID}, "members": [member], "leader": member,
                                       "etcd_leader": member},
        "/pd/api/v1/cluster": lambda: {"id": CLUSTER_ID, "max_peer_count": m.max_replicas},
        "/pd/api/v1/leader": lambda: member,
        "/pd/api/v2/ready": lambda: "",
        "/pd/api/v1/config/replicate": lambda: config_json(m)["replication"],
        "/pd/api/v1/config": lambda: config_json(m),
        "/pd/api/v1/regions": lambda: {"count": len(m.regions), "regions": [region_json(m, r, now) for r in m.regions]},
    }
    return (200, fixed[path]()) if path in fixed else None

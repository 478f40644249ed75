"""SIMULATED PD's model: stores, regions and leaders on PD's and TiKV's timing (its JSON: ``pd_api``).

This is a simulation, not PD. It knows nothing of Kubernetes and needs only
Python's standard library, so that the same model serves PD's HTTP API on
both tiers:

- on the local tier, ``pd_sim.PDSim`` plays the TiKV processes from what the
  API server shows of the TiKV pods (kwok runs no processes);
- on the kind tier, the PD stand-in pod (``standins/pd_server.py``) hears
  heartbeats from the TiKV stand-in processes over the pod network, as PD
  hears them from TiKV, and nothing else.

All times are multiplied by ``Timing.scale``:

- a store that stops heartbeating (every 10 s) is Disconnected 20 s after its
  last heartbeat and Down after ``max-store-down-time`` (30 m; settable
  through ``POST /pd/api/v1/config``);
- Raft leaders move off a silent store after an election timeout and move
  back, a few at a time, once it has caught up;
- a returning store's peers are pending while it catches up; a leader reports
  a peer down after TiKV's ``max-peer-down-duration`` (10 m).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CLUSTER_ID", "MEMBER_ID", "PDModel", "Region", "SimStore", "Timing", "go_duration", "load_saved",
           "parse_go_duration", "regions_record", "rfc3339", "store_record", "tc_status"]

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


def rfc3339(epoch: float, nanos: bool = False) -> str:
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
    incarnation: str = ""  # which TiKV process heartbeats: a new one is a restart


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
class PDModel:
    cluster: str
    namespace: str
    timing: Timing = field(default_factory=Timing)
    regions_count: int = 48
    stores: dict[str, SimStore] = field(default_factory=dict)  # by pod name
    regions: list[Region] = field(default_factory=list)
    _next_id: int = 1
    max_store_down: float | None = None
    last_rebalance: float = 0.0
    max_replicas: int = 3
    member_name: str = ""  # PD's --name; <cluster>-pd-0 when not given
    member_host: str = ""  # the host of PD's advertised URLs

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

    def register(self, pod: str, address: str) -> SimStore:
        st = self.stores.get(pod)
        if st is None:
            st = self.stores[pod] = SimStore(id=self.alloc(), pod=pod, address=address)
        return st

    def heartbeat(self, pod: str, address: str, process: str, now: float) -> SimStore:
        """A store heartbeat from the TiKV process ``process`` of ``pod``, received at ``now``."""
        st = self.register(pod, address)
        if st.incarnation != process:
            # A new TiKV process: a store that was here before first catches up on the log it missed.
            if st.last_heartbeat:
                st.caught_up_at = now + self.timing.s("catch_up")
            st.incarnation, st.start_ts = process, now
        if st.serving_since is None:
            st.serving_since = now
        st.silent_since = None
        st.booting = False
        st.last_heartbeat = now
        return st

    def stopped(self, pod: str, now: float) -> None:
        """The TiKV process of ``pod`` is gone (it said goodbye, or its pod is)."""
        st = self.stores.get(pod)
        if st is not None and st.serving_since is not None:
            st.serving_since, st.silent_since = None, now

    def infer_silence(self, now: float) -> None:
        """Stores whose heartbeats stopped coming count as silent from the first one missed."""
        interval = self.timing.s("heartbeat")
        for st in self.stores.values():
            heard = max(st.last_heartbeat, st.serving_since or 0.0)  # a loaded store: since it was loaded
            if st.serving_since is not None and now - heard > 1.5 * interval:
                st.serving_since, st.silent_since = None, heard + interval

    def advance(self, now: float) -> None:
        """Regions exist once three stores have heartbeated; leaders follow the stores."""
        if not self.regions and len(self.stores) >= 3 and all(s.last_heartbeat for s in self.stores.values()):
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
                    r.leader_store = min(candidates, key=lambda sid: self.leaders(sid))
        if now - self.last_rebalance >= t.s("rebalance_step") and healthy:
            self.last_rebalance = now
            for _ in range(4):  # a few leaders per step, as balance-leader does
                counts = {sid: self.leaders(sid) for sid in healthy}
                lo, hi = min(counts, key=counts.__getitem__), max(counts, key=counts.__getitem__)
                if counts[hi] - counts[lo] <= 1:
                    break
                r = next((r for r in self.regions if r.leader_store == hi and lo in r.peers), None)
                if r is None:
                    break
                r.leader_store = lo

    def leaders(self, store_id: int) -> int:
        return sum(1 for r in self.regions if r.leader_store == store_id)

    # ------------------------------------------------------------ PD JSON

    def pending_regions(self, now: float, only_store: int | None = None) -> list[Region]:
        by_id = {s.id: s for s in self.stores.values()}
        catching = {sid for sid, s in by_id.items()
                    if s.serving_since is not None and s.last_heartbeat and now < s.caught_up_at}
        if only_store is not None:
            catching &= {only_store}
        return [r for r in self.regions if catching & set(r.peers) and r.leader_store not in catching]

    def down_peers(self, r: Region, now: float) -> list[tuple[int, int, int]]:
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


# ------------------------------------------------------------ what PD saves, and a new leader loads

def store_record(st: SimStore) -> dict[str, Any]:
    """A store's metadata as PD saves it (``/pd/<cluster id>/raft/s/<id>``), its last heartbeat included."""
    return {"id": st.id, "pod": st.pod, "address": st.address, "start_ts": st.start_ts,
            "last_heartbeat": st.last_heartbeat, "incarnation": st.incarnation}


def regions_record(m: PDModel) -> dict[str, Any]:
    """The regions and their leaders, as PD's region syncer hands them to the other members."""
    return {"next_id": m._next_id,
            "regions": [[r.id, r.start_key, r.end_key, {str(k): v for k, v in r.peers.items()}, r.leader_store]
                        for r in m.regions]}


def load_saved(m: PDModel, stores: list[dict[str, Any]], regions: dict[str, Any] | None, now: float) -> None:
    """What a new PD leader starts from at ``now``: the stores and regions as last saved. Each store reads
    the ``last_heartbeat`` it was saved with, as real PD's do, and counts as serving until it has missed a
    heartbeat since the load (its leaders stay where they were until then)."""
    for doc in stores:
        st = SimStore(id=int(doc["id"]), pod=str(doc["pod"]), address=str(doc["address"]),
                      start_ts=float(doc["start_ts"]), last_heartbeat=float(doc["last_heartbeat"]),
                      incarnation=str(doc["incarnation"]), serving_since=now)
        m.stores[st.pod] = st
        m._next_id = max(m._next_id, st.id + 1)
    if regions:
        m.regions = [Region(id=int(i), start_key=str(a), end_key=str(b),
                            peers={int(k): int(v) for k, v in peers.items()}, leader_store=int(lead))
                     for i, a, b, peers, lead in regions["regions"]]
        m._next_id = max(m._next_id, int(regions["next_id"]))


def parse_go_duration(text: str) -> float:
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


def tc_status(stores: dict[str, Any], prev: dict[str, Any], now: float) -> dict[str, Any]:
    """What tidb-operator's status sync writes into a TidbCluster, from PD's ``GET /stores`` answer."""
    old = (prev.get("tikv") or {}).get("stores") or {}
    out = {}
    for entry in stores.get("stores") or []:
        store, status = entry.get("store", {}), entry.get("status", {})
        sid, state = str(store.get("id", "")), str(store.get("state_name", "Up"))
        host = str(store.get("address", "")).rsplit(":", 1)[0]
        was = old.get(sid, {})
        out[sid] = {"id": sid, "podName": host.split(".", 1)[0], "ip": host,
                    "leaderCount": int(status.get("leader_count", 0)), "state": state,
                    "lastTransitionTime": was.get("lastTransitionTime") if was.get("state") == state
                    else rfc3339(now)}
    not_up = any(s["state"] != "Up" for s in out.values())
    cond = {"type": "Ready", "status": "False" if not_up else "True",
            "reason": "TiKVStoreNotUp" if not_up else "Ready",
            "message": "TiKV store(s) are not up" if not_up else "TiDB cluster is fully up and running",
            "lastUpdateTime": rfc3339(now)}
    prev_cond = next((c for c in prev.get("conditions") or [] if c.get("type") == "Ready"), {})
    cond["lastTransitionTime"] = prev_cond.get("lastTransitionTime") if prev_cond.get("status") == cond["status"] \
        else rfc3339(now)
    return {"clusterID": str(CLUSTER_ID), "conditions": [cond],
            "tikv": {"phase": "Normal", "synced": True, "bootStrapped": True, "stores": out}}

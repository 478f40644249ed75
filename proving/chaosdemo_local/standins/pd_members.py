"""The PD STAND-IN's members: a real etcd member per PD pod, and PD's leader elected on it, as real PD does.

Real PD embeds an etcd member and elects its leader through it. What this follows, from tikv/pd v8.5:

- **Joining** (``server/join/join.go``): the first member starts with ``--initial-cluster`` (tidb-operator's
  discovery hands it out), every later one with ``--join``: it adds itself as a member through a running one
  and starts its etcd with the member list that answer gave (state ``existing``). A member with data starts
  from it and needs neither.
- **The embedded etcd's timing** (``server/config/config.go``): ``tick-interval`` 500 ms, ``election-interval``
  3 s; here etcd's ``--heartbeat-interval`` and ``--election-timeout``.
- **The leader** (``server/server.go`` ``leaderLoop``, ``pkg/member/member.go``): only the etcd leader
  campaigns, 200 ms apart otherwise; it grants a lease of ``leader-lease`` (3 s) and writes
  ``/pd/<cluster id>/leader`` with it in a transaction that fails if the key exists. It keeps the lease alive
  a third of its TTL apart, and resigns when the lease is lost or the etcd leader moves elsewhere. A member
  that finds its own name under the key (left from before a restart) deletes it and campaigns again.
  The others watch the key and campaign once it is gone.
- **Health** (``server/cluster/cluster.go`` ``CheckHealth``): GET ``/pd/api/v1/ping`` of every member in
  turn, each with a 3 s timeout (``clientTimeout``).

The etcd here listens for clients on loopback only, and advertises PD's client URL: PD's port splices
etcd's gRPC through (``pd_server.PDPort``) and hands ``/v3/`` JSON calls to it, so a joining member can add
itself through any member's PD URL. Its peers talk on PD's peer port (2380), over the pod network.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaosdemo_local.simulation.pd_model import CLUSTER_ID
from chaosdemo_local.standins.raft_groups import b64, call  # etcd's JSON gateway, as the TiKV stand-in calls it

__all__ = ["CHECK_TIMEOUT", "LEADER_KEY", "LEASE_TTL", "Election", "Etcd", "check_health",
           "initial_cluster_from_join", "member_doc"]

log = logging.getLogger("pd-standin")
LEASE_TTL = 3.0  # PD's leader-lease
CHECK_TIMEOUT = 3.0  # CheckHealth's clientTimeout
LEADER_KEY = f"/pd/{CLUSTER_ID}/leader"


def member_doc(m: dict[str, Any]) -> dict[str, Any]:
    """A PD member as ``/pd/api/v1/members`` shows it, from etcd's member list entry."""
    return {"name": m.get("name", ""), "member_id": int(m.get("ID", 0)), "peer_urls": m.get("peerURLs", []),
            "client_urls": m.get("clientURLs", []), "deploy_path": "/", "binary_version": "v8.5.7",
            "git_hash": "0b0f16a3e8d0f2c1b4a5e6d7c8b9a0f1e2d3c4b5"}


def initial_cluster_from_join(join: str, name: str, peer_url: str, deadline: float = 120.0) -> str:
    """``--join``: add this member through the first running member that takes it, as PD's join.go does,
    and return the ``--initial-cluster`` it starts with. A member added before (a start that failed after
    the add) is found in the list instead of added twice. etcd refuses an add while an added member has not
    started (it would lose its quorum); real PD then exits and its pod restarts, this one tries again."""
    end, errors = time.monotonic() + deadline, []
    while time.monotonic() < end:
        for url in filter(None, (u.strip() for u in join.split(","))):
            try:
                members = call(url, "/v3/cluster/member/list", {}, timeout=5)["members"]
                if not any(peer_url in m.get("peerURLs", []) for m in members):
                    members = call(url, "/v3/cluster/member/add", {"peerURLs": [peer_url]}, timeout=5)["members"]
            except (OSError, ValueError, KeyError) as e:
                errors = [*errors[-2:], f"{url}: {e}"]
                continue
            return ",".join(f"{m.get('name') or name}={m['peerURLs'][0]}" for m in members)
        time.sleep(0.5)
    raise OSError(f"no member to join through took this one in {deadline:.0f}s: {'; '.join(errors)}")


@dataclass
class Etcd:
    """PD's embedded etcd: a real etcd child process, clients on loopback, peers on PD's peer URL."""

    name: str
    data_dir: str
    client_port: int  # on 127.0.0.1
    peer_url: str  # PD's --advertise-peer-urls
    listen_peer_url: str  # PD's --peer-urls
    client_url: str  # PD's advertised client URL, which etcd advertises too
    binary: str
    time_scale: float = 1.0

    @property
    def local(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def has_data(self) -> bool:
        return os.path.isdir(os.path.join(self.data_dir, "member"))

    def argv(self, initial_cluster: str, state: str) -> list[str]:
        tick = max(10, int(500 * self.time_scale))
        return [self.binary, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", self.local, "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.listen_peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
                "--initial-cluster-token", f"pd-{CLUSTER_ID}",
                "--heartbeat-interval", str(tick), "--election-timeout", str(6 * tick), "--log-level", "warn"]

    def start(self, initial_cluster: str, join: str) -> subprocess.Popen[bytes]:
        """From its data if it has some, else as the first member or by joining through ``join``."""
        state = "new"
        if self.has_data():
            initial_cluster = initial_cluster or f"{self.name}={self.peer_url}"  # unread: etcd starts from data
        elif join:
            initial_cluster, state = initial_cluster_from_join(join, self.name, self.peer_url), "existing"
        elif not initial_cluster:
            initial_cluster = f"{self.name}={self.peer_url}"
        log.info("etcd member %s: %s (%s)", self.name, "from its data" if self.has_data() else state,
                 initial_cluster)
        return subprocess.Popen(self.argv(initial_cluster, state))

    def call(self, path: str, body: dict[str, Any], timeout: float = 1.0) -> dict[str, Any]:
        return call(self.local, path, body, timeout)

    def ids(self) -> tuple[int, int]:
        """(this member's id, the etcd leader's id; 0 when it knows none)."""
        status = self.call("/v3/maintenance/status", {})
        return int(status["header"]["member_id"]), int(status.get("leader", 0))

    def members(self) -> list[dict[str, Any]]:
        return [member_doc(m) for m in self.call("/v3/cluster/member/list", {}, timeout=2)["members"]]

    def get(self, key: str) -> dict[str, Any] | None:
        kvs = self.call("/v3/kv/range", {"key": b64(key)}).get("kvs") or []
        return kvs[0] if kvs else None

    def put(self, key: str, value: str) -> None:
        self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout=2)

    def scan(self, prefix: str) -> list[str]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        kvs = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)}, timeout=2).get("kvs") or []
        return [base64.b64decode(kv["value"]).decode() for kv in kvs]


class Election:
    """PD's leader loop for this member; ``leader`` is the PD leader's member as last read (None: none known)."""

    def __init__(self, etcd: Etcd, on_change: Callable[[bool], None], ttl: float = LEASE_TTL) -> None:
        self.etcd, self.on_change, self.ttl = etcd, on_change, ttl
        self.leader: dict[str, Any] | None = None
        self.me: dict[str, Any] = {}
        self.expires = 0.0  # monotonic: when the lease this member leads with runs out, as last kept

    def holds(self) -> bool:
        """Whether this member leads and its lease has not run out by its own clock (PD's leadership.Check):
        a leader that was paused past its lease stops answering as leader before it learns it lost."""
        return self.leader is self.me and time.monotonic() < self.expires

    def run(self, stop: threading.Event) -> None:
        pause = 0.2 * max(self.etcd.time_scale, 0.05)
        while not stop.is_set():
            try:
                if not self.round(stop):
                    stop.wait(pause)
            except (OSError, ValueError, KeyError) as e:
                log.debug("leader loop: %s", e)
                self.leader = None
                stop.wait(pause)

    def round(self, stop: threading.Event) -> bool:
        """One turn of the loop: watch a leader, clear a stale key of ours, or campaign. False: wait first."""
        kv = self.etcd.get(LEADER_KEY)
        mine, etcd_leader = self.etcd.ids()
        if not self.me:
            self.me = next(m for m in self.etcd.members() if m["member_id"] == mine)
        if kv is not None:
            leader = json.loads(base64.b64decode(kv["value"]))
            if leader.get("name") != self.me["name"]:
                self.leader = leader
                self.watch(stop, kv["mod_revision"])
                return True
            log.info("%s: the leader key is ours from before: deleted, to campaign again", self.me["name"])
            self.etcd.call("/v3/kv/deleterange", {"key": b64(LEADER_KEY)})
            return True
        self.leader = None
        if etcd_leader != mine:
            return False  # only the etcd leader campaigns
        granted = time.monotonic()
        grant = self.etcd.call("/v3/lease/grant", {"TTL": max(1, round(self.ttl))})
        lease, self.expires = grant["ID"], granted + int(grant["TTL"])
        txn = {"compare": [{"key": b64(LEADER_KEY), "target": "CREATE", "create_revision": "0"}],
               "success": [{"request_put": {"key": b64(LEADER_KEY), "value": b64(json.dumps(self.me)),
                                            "lease": lease}}]}
        if not self.etcd.call("/v3/kv/txn", txn).get("succeeded"):
            return False
        self.lead(stop, lease)
        return True

    def watch(self, stop: threading.Event, revision: str) -> None:
        """Until the leader key is gone or rewritten (PD watches it; this reads it 100 ms apart)."""
        while not stop.wait(0.1 * max(self.etcd.time_scale, 0.1)):
            kv = self.etcd.get(LEADER_KEY)
            if kv is None or kv["mod_revision"] != revision:
                log.info("%s: PD leader %s is gone", self.me.get("name"), (self.leader or {}).get("name"))
                self.leader = None
                return

    def lead(self, stop: threading.Event, lease: str) -> None:
        """Lead while the lease is kept and this member is the etcd leader; resign otherwise."""
        name, since = self.me["name"], time.monotonic()
        log.info("%s: PD leader (lease %s, TTL %gs)", name, lease, self.ttl)
        self.leader, why = self.me, "stopped"
        try:
            self.on_change(True)
            while not stop.wait(self.ttl / 3):
                sent = time.monotonic()
                kept = self.etcd.call("/v3/lease/keepalive", {"ID": lease}).get("result", {})
                if int(kept.get("TTL", 0)) <= 0:
                    why = "its lease expired"
                    break
                self.expires = sent + int(kept["TTL"])
                mine, etcd_leader = self.etcd.ids()
                if etcd_leader != mine:
                    why = "the etcd leader moved"
                    self.etcd.call("/v3/lease/revoke", {"ID": lease})
                    break
            else:
                why = "the member is stopping: lease revoked, so the others need not wait it out"
                self.etcd.call("/v3/lease/revoke", {"ID": lease})  # PD resigns on a graceful close
        except (OSError, ValueError, KeyError) as e:
            why = f"etcd did not answer ({e})"
        finally:
            self.leader = None
            log.info("%s: no longer PD leader after %.1fs: %s", name, time.monotonic() - since, why)
            self.on_change(False)


def check_health(members: list[dict[str, Any]], timeout: float = CHECK_TIMEOUT) -> list[dict[str, Any]]:
    """``/pd/api/v1/health``: every member's ping, one after another, as PD's CheckHealth does."""
    out = []
    for m in members:
        healthy = False
        for url in m["client_urls"]:
            req = urllib.request.Request(url + "/pd/api/v1/ping", headers={"PD-Allow-Follower-Handle": "true"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    healthy = r.status == 200
            except OSError:
                continue
            if healthy:
                break
        out.append({"name": m["name"], "member_id": m["member_id"], "client_urls": m["client_urls"],
                    "health": healthy})
    return out

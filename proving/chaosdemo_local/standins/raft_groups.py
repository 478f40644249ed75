"""The TiKV STAND-IN's data: one etcd member per raft group, so the SQL canary's rows are replicated by a
real, maintained consensus implementation over the pod network, and a fault costs clients what real
elections cost. Not TiKV's raftstore: its shape only (several groups, one member of each on every store,
each group's leader on a different store, so losing one store costs part of the keyspace).

    group g of the TidbCluster's N stores: a member on each TiKV pod, named after the pod,
    client http://<pod>.<cluster>-tikv-peer.<ns>.svc:<CLIENT_PORT + g>, peer :<PEER_PORT + g>,
    data in <data-dir>/canary-raft-<g>

Timing is TiKV's: a heartbeat a second (``raft-base-tick-interval`` 1 s) and an election after ten
(``raft-election-timeout-ticks`` 10), etcd's ``--heartbeat-interval 1000 --election-timeout 10000``.
A store that has led no group for 10 s while another led two or more takes one of those groups' lead, as
PD's balance-leader scheduler evens out leader counts: PD learns of a store back from its store heartbeat
(TiKV's ``raftstore.pd-store-heartbeat-tick-interval``, 10 s) and runs each scheduler at most 5 s apart (its
``MaxScheduleInterval``); a balanced cluster moves nothing, and a store held down or paused takes nothing
until it runs again, and then only once its log has caught up: TiKV's leader refuses to hand its lead to a
peer whose log lags it by ``leader-transfer-max-log-lag`` entries (128) or more ("log gap", raftstore's
``ready_to_transfer_leader``), where etcd would stop taking writes until the peer caught up or its
election timeout passed (seen on kind: a statement held 5 s by a transfer to a store just resumed).
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CLIENT_PORT", "GROUPS", "PEER_PORT", "Member", "b64", "call", "caught_up", "client_url", "group_to_take",
           "start_groups"]

log = logging.getLogger("tikv-standin")
CLIENT_PORT, PEER_PORT = 23790, 23800
GROUPS = 3
REBALANCE_AFTER = 10.0
MAX_LOG_LAG = 128  # TiKV's raftstore.leader-transfer-max-log-lag


def client_url(pod: str, domain: str, group: int) -> str:
    return f"http://{pod}.{domain}:{CLIENT_PORT + group}"


def call(url: str, path: str, body: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    """One call to etcd's JSON gateway."""
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        out: dict[str, Any] = json.loads(r.read() or b"{}")
        return out


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Member:
    """This store's member of one group, kept running (restarted if etcd exits)."""

    group: int
    pod: str
    pods: list[str]  # every store's pod, in ordinal order
    domain: str  # <cluster>-tikv-peer.<ns>.svc
    data_dir: Path
    etcd: str = "/usr/bin/etcd"
    time_scale: float = 1.0

    def argv(self) -> list[str]:
        g, peer = self.group, PEER_PORT + self.group
        cluster = ",".join(f"{p}=http://{p}.{self.domain}:{peer}" for p in self.pods)
        beat = max(10, int(1000 * self.time_scale))
        return [self.etcd, "--name", self.pod, "--data-dir", str(self.data_dir / f"canary-raft-{g}"),
                "--listen-peer-urls", f"http://0.0.0.0:{peer}",
                "--initial-advertise-peer-urls", f"http://{self.pod}.{self.domain}:{peer}",
                "--listen-client-urls", f"http://0.0.0.0:{CLIENT_PORT + g}",
                "--advertise-client-urls", client_url(self.pod, self.domain, g),
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", f"canary-raft-{g}",
                "--heartbeat-interval", str(beat), "--election-timeout", str(10 * beat),
                "--quota-backend-bytes", str(256 * 2**20), "--log-level", "warn"]

    def keep_running(self, stop: threading.Event) -> None:
        while not stop.is_set():
            proc = subprocess.Popen(self.argv())
            while proc.poll() is None and not stop.is_set():
                stop.wait(0.5)
            if stop.is_set():
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                return
            log.warning("raft group %s member exited with %s; starting it again", self.group, proc.returncode)
            stop.wait(1.0)



def group_to_take(leaders: dict[int, str], me: str) -> int | None:
    """The group this store should take the lead of, as PD's balance-leader scheduler evens out leader counts:
    when it leads none and another store leads two or more, the lowest of that store's groups. Balanced
    counts are a fixed point whichever store leads which group, so nothing moves in a balanced cluster."""
    counts: dict[str, list[int]] = {}
    for group, pod in sorted(leaders.items()):
        counts.setdefault(pod, []).append(group)
    if counts.get(me):
        return None
    crowded = [groups for pod, groups in sorted(counts.items()) if len(groups) >= 2]
    return crowded[0][0] if crowded else None


def leader_map(pod: str, domain: str) -> dict[int, str]:
    """Which pod leads each group, asked of this pod's own members (each knows its group's leader)."""
    out: dict[int, str] = {}
    for g in range(GROUPS):
        me = client_url(pod, domain, g)
        leader = call(me, "/v3/maintenance/status", {}).get("leader", "0")
        if leader == "0":
            continue
        members = call(me, "/v3/cluster/member/list", {})["members"]
        out[g] = next(m["name"] for m in members if m["ID"] == leader)
    return out


def caught_up(leader: dict[str, Any], mine: dict[str, Any], max_lag: int = MAX_LOG_LAG) -> bool:
    """Whether this member's log is close enough to the leader's for TiKV to hand it the lead: the leader's last
    index less than ``max_lag`` past what this member applied (both from etcd's ``/v3/maintenance/status``)."""
    return int(leader.get("raftIndex", 0)) < int(mine.get("raftAppliedIndex", 0)) + max_lag


def balance_when_due(pod: str, domain: str, stop: threading.Event, time_scale: float = 1.0) -> None:
    """Take a group's lead once this store has led none for REBALANCE_AFTER while another led two or more."""
    due_since: float | None = None
    while not stop.wait(2.0):
        try:
            leaders = leader_map(pod, domain)
            group = group_to_take(leaders, pod)
        except (OSError, ValueError, KeyError, StopIteration):
            due_since, group = None, None  # this store's members are not healthy: not its turn
        if group is None:
            due_since = None
            continue
        due_since = due_since or time.monotonic()
        if time.monotonic() - due_since < REBALANCE_AFTER * time_scale:
            continue
        me = client_url(pod, domain, group)
        try:
            status = call(me, "/v3/maintenance/status", {})
            members = call(me, "/v3/cluster/member/list", {})["members"]
            url = next(m["clientURLs"][0] for m in members if m["name"] == leaders[group])
            if not caught_up(call(url, "/v3/maintenance/status", {}), status):
                log.info("raft group %s: not taking the lead yet: this member's log lags the leader's", group)
                continue  # still due: asked again at the next round
            call(url, "/v3/maintenance/transfer-leadership", {"targetID": status["header"]["member_id"]}, timeout=10)
            log.info("raft group %s: lead taken by %s (it led none, %s led %s)", group, pod, leaders[group],
                     sorted(g for g, p in leaders.items() if p == leaders[group]))
        except (OSError, ValueError, KeyError, StopIteration) as e:
            log.warning("raft group %s: could not take the lead: %s", group, e)
        due_since = None


def start_groups(address: str, stores: int, data_dir: str, stop: threading.Event, *,
                 etcd: str = "/usr/bin/etcd", time_scale: float = 1.0) -> list[Member]:
    """This store's members of every group, each in threads of its own, until ``stop``.

    ``address`` is the store's, as tidb-operator advertises it: <pod>.<cluster>-tikv-peer.<ns>.svc:20160.
    """
    pod, _, domain = address.split(":")[0].partition(".")
    cluster, _, ordinal = pod.rpartition("-tikv-")
    if not cluster or not ordinal.isdigit() or not domain:
        log.warning("store address %s is not <cluster>-tikv-<n>.<peer domain>: no raft groups", address)
        return []
    pods = [f"{cluster}-tikv-{i}" for i in range(stores)]
    members = [Member(g, pod, pods, domain, Path(data_dir or "/var/lib/tikv"), etcd, time_scale)
               for g in range(GROUPS)]
    for m in members:
        threading.Thread(target=m.keep_running, args=(stop,), daemon=True).start()
    threading.Thread(target=balance_when_due, args=(pod, domain, stop, time_scale), daemon=True).start()
    log.info("raft groups 0-%s: a member of each on %s (STAND-IN data path, etcd)", GROUPS - 1, pod)
    return members


"""The TiKV STAND-IN's data: one etcd member per raft group, so the SQL canary's rows are replicated by a
real, maintained consensus implementation over the pod network, and a fault costs clients what real
elections cost. Not TiKV's raftstore: its shape only (several groups, one member of each on every store,
each group's leader on a different store, so losing one store costs part of the keyspace).

    group g of the TidbCluster's N stores: a member on each TiKV pod, named after the pod,
    client http://<pod>.<cluster>-tikv-peer.<ns>.svc:<CLIENT_PORT + g>, peer :<PEER_PORT + g>,
    data in <data-dir>/canary-raft-<g>

Timing is TiKV's: a heartbeat a second (``raft-base-tick-interval`` 1 s) and an election after ten
(``raft-election-timeout-ticks`` 10), etcd's ``--heartbeat-interval 1000 --election-timeout 10000``.
The member of group g on store g takes its group's lead when it has been elsewhere for 30 s while this
member is healthy, as PD's balance-leader scheduler moves leaders back; a fault shorter than that leaves
the lead where the election put it.
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

__all__ = ["CLIENT_PORT", "GROUPS", "PEER_PORT", "Member", "client_url", "start_groups"]

log = logging.getLogger("tikv-standin")
CLIENT_PORT, PEER_PORT = 23790, 23800
GROUPS = 3
REBALANCE_AFTER = 30.0


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

    def lead_when_due(self, stop: threading.Event) -> None:
        """Take the group's lead back once it has been elsewhere for REBALANCE_AFTER (group g on store g)."""
        me = client_url(self.pod, self.domain, self.group)
        elsewhere_since: float | None = None
        while not stop.wait(2.0):
            try:
                status = call(me, "/v3/maintenance/status", {})
                mine, leader = status["header"]["member_id"], status.get("leader", "0")
            except (OSError, ValueError, KeyError):
                elsewhere_since = None  # this member is not healthy: not its turn
                continue
            if leader == mine or leader == "0":
                elsewhere_since = None
                continue
            elsewhere_since = elsewhere_since or time.monotonic()
            if time.monotonic() - elsewhere_since < REBALANCE_AFTER * self.time_scale:
                continue
            try:
                members = call(me, "/v3/cluster/member/list", {})["members"]
                url = next(m["clientURLs"][0] for m in members if m["ID"] == leader)
                call(url, "/v3/maintenance/transfer-leadership", {"targetID": mine}, timeout=10)
                log.info("raft group %s: lead taken back by %s", self.group, self.pod)
            except (OSError, ValueError, KeyError, StopIteration) as e:
                log.warning("raft group %s: could not take the lead back: %s", self.group, e)
            elsewhere_since = None


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
        if m.group == int(ordinal) % GROUPS:
            threading.Thread(target=m.lead_when_due, args=(stop,), daemon=True).start()
    log.info("raft groups 0-%s: a member of each on %s (STAND-IN data path, etcd)", GROUPS - 1, pod)
    return members


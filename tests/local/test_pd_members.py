"""Three PD STAND-IN members on real etcd, without kind: they elect one PD leader through etcd, answer for
it as followers, and when it is paused a new leader takes over from what was saved in etcd: every store reads
the stale last_heartbeat it was saved with, and Disconnected, until its next heartbeat, as real PD does.

They start from one --initial-cluster naming all three (as tiup starts PD). tidb-operator's discovery has
later members --join instead; that path is the kind tier's: each join waits out etcd's strict reconfiguration
check (5 s connected to a quorum) and, from one member to two, the new member's first read (etcd's 5 s
request timeout and two elections), which would make this test three times as long.

Time is scaled by 0.1 (heartbeat 1 s, Disconnected after 2 s, etcd tick 50 ms, election 300 ms); the lease
is etcd's shortest, 1 s. Nothing here decides who leads: etcd's election and lease do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chaosdemo_local.cluster.control_plane import find_binaries, free_port

SCALE = 0.1
STORES = ["basic-tikv-0", "basic-tikv-1", "basic-tikv-2"]
T = TypeVar("T")


def get(url: str, path: str, timeout: float = 3.0) -> Any:
    with urllib.request.urlopen(url + path, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def until(what: str, probe: Callable[[], T | None], deadline: float = 20.0) -> T:
    """``probe``'s first answer that is not None (errors count as None), or fail at the deadline."""
    end, last = time.monotonic() + deadline, "no answer"
    while time.monotonic() < end:
        try:
            got = probe()
            if got is not None:
                return got
        except (OSError, ValueError, KeyError) as e:
            last = str(e)
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {deadline}s ({last})")


class PDs:
    """PD STAND-IN processes, each in a process group of its own with its etcd (a pause stops both, as a
    pause of real PD stops its embedded etcd)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = [(free_port(), free_port(), free_port()) for _ in range(3)]  # http, etcd client, peer
        self.procs: list[subprocess.Popen[bytes]] = []

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i][0]}"

    def start(self, i: int) -> None:
        http, etcd, peer = self.ports[i]
        peer_url = f"http://127.0.0.1:{peer}"
        everyone = ",".join(f"pd-{k}=http://127.0.0.1:{self.ports[k][2]}" for k in range(3))
        log = open(self.workdir / f"pd-{i}.log", "wb")  # the process keeps it
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "chaosdemo_local.standins.pd_server", "--cluster", "basic", "--namespace",
             "tidb-cluster", "--port", str(http), "--etcd", str(find_binaries() / "etcd"), "--etcd-port", str(etcd),
             "--name", f"pd-{i}", "--data-dir", str(self.workdir / f"pd-{i}"), "--time-scale", str(SCALE),
             "--advertise-client-urls", self.url(i), "--peer-urls", peer_url, "--advertise-peer-urls", peer_url,
             f"--initial-cluster={everyone}"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        log.close()
        until(f"pd-{i} answers", lambda: get(self.url(i), "/pd/api/v1/ping") == "" or None)

    def signal(self, i: int, sig: int) -> None:
        os.killpg(self.procs[i].pid, sig)

    def leader_of(self, i: int) -> str | None:
        """Member ``i``'s own word on the leader (a follower would ask the leader otherwise)."""
        req = urllib.request.Request(self.url(i) + "/pd/api/v1/leader", headers={"PD-Allow-Follower-Handle": "1"})
        with urllib.request.urlopen(req, timeout=3) as r:
            return json.loads(r.read()).get("name") or None

    def stop(self) -> None:
        for p in self.procs:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            p.wait()


class Heartbeats:
    """Three TiKV stores heartbeating every 2 s (TiKV's 10 s, scaled) to whichever member answers."""

    def __init__(self, pds: PDs) -> None:
        self.pds, self.on, self.stop = pds, threading.Event(), threading.Event()
        self.first: float = 0.0
        self.good = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def beat(self) -> None:
        for k, pod in enumerate(STORES):
            doc = json.dumps({"pod": pod, "process": f"p{k}",
                              "address": f"{pod}.basic-tikv-peer.tidb-cluster.svc:20160"}).encode()
            for i in sorted(range(3), key=lambda i: i != self.good):  # the member that answered last first
                try:
                    req = urllib.request.Request(self.pds.url(i) + "/chaosdemo-standin/heartbeat", data=doc)
                    with urllib.request.urlopen(req, timeout=1):
                        self.good = i
                        break
                except OSError:
                    continue
        self.first = self.first or time.time()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.on.is_set():
                self.beat()
            self.stop.wait(10 * SCALE)


@pytest.fixture
def pds(tmp_path: Path) -> Iterator[PDs]:
    p = PDs(tmp_path)
    try:
        for i in range(3):
            p.start(i)
        yield p
    finally:
        p.stop()


def agreed(pds: PDs, members: list[int], not_name: str = "") -> str | None:
    names = {pds.leader_of(i) for i in members}
    name = names.pop() if len(names) == 1 else None
    return name if name and name != not_name else None


def states(pds: PDs, i: int) -> dict[str, tuple[str, int]]:
    stores = get(pds.url(i), "/pd/api/v1/stores")["stores"]
    return {s["store"]["address"].split(".")[0]: (s["store"]["state_name"], s["store"]["last_heartbeat"])
            for s in stores}


def test_three_pd_members_elect_a_leader_and_a_new_one_starts_from_stale_heartbeats(pds: PDs) -> None:
    leader = until("one PD leader, named by all three", lambda: agreed(pds, [0, 1, 2]))
    old = int(leader.removeprefix("pd-"))
    followers = [i for i in range(3) if i != old]
    members = get(pds.url(followers[0]), "/pd/api/v1/members")
    assert sorted(m["name"] for m in members["members"]) == ["pd-0", "pd-1", "pd-2"], members
    assert members["leader"]["name"] == leader and members["etcd_leader"]["name"] == leader, members

    beats = Heartbeats(pds)
    beats.on.set()
    beats.thread.start()
    try:
        until("three stores Up, read through a follower",
              lambda: states(pds, followers[1]) if len(states(pds, followers[1])) == 3 and all(
                  s == "Up" for s, _ in states(pds, followers[1]).values()) else None)
        time.sleep(max(0.0, beats.first + 25 * SCALE - time.time()))  # the saved beats older than 20 s, scaled
        before = states(pds, followers[0])
        beats.on.clear()
        time.sleep(0.3)
        paused = time.monotonic()
        pds.signal(old, signal.SIGSTOP)  # the leader and its etcd
        new = until("a new PD leader among the other two", lambda: agreed(pds, followers, not_name=leader))
        took = time.monotonic() - paused
        print(f"PD leader {leader} paused: {new} elected {took:.2f}s later")
        loaded = states(pds, followers[0])
        assert len(loaded) == 3 and all(s == "Disconnected" for s, _ in loaded.values()), loaded
        assert all(loaded[p][1] < before[p][1] for p in STORES), (loaded, before)

        started = time.monotonic()
        health = {h["name"]: h["health"] for h in get(pds.url(followers[1]), "/pd/api/v1/health", timeout=10)}
        slow = time.monotonic() - started
        assert health == {leader: False, **{f"pd-{i}": True for i in followers}}, health
        assert slow >= 1.0, f"the paused member's ping was waited for: {slow:.2f}s"

        beats.on.set()
        until("the stores Up again after their next heartbeat",
              lambda: True if all(s == "Up" for s, _ in states(pds, followers[0]).values()) else None, 5)
        pds.signal(old, signal.SIGCONT)
        assert until("the old leader follows the new one", lambda: agreed(pds, [0, 1, 2])) == new
        assert len(states(pds, old)) == 3, "the old leader answers for the new one"
    finally:
        beats.stop.set()
        beats.thread.join()

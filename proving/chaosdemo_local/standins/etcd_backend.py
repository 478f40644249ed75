"""The TiDB STAND-IN's storage: the SQL canary's rows in the TiKV STAND-INs' etcd raft groups
(``standins/raft_groups.py``), reached through etcd's JSON gateway.

Each part of the canary's table lives in one group (part i in group i mod 3). A statement goes to the
member its group's leader was last seen on, then to the others, as TiDB's region cache retries a
region's peers, refreshing who leads; over connections kept open to each member, its address resolved once
and again only after a failure, as TiDB keeps a gRPC connection to each store and asks PD for a store's
address only when it could not reach it (a name looked up per request is several queries to the cluster's
DNS under the pod's ``ndots:5`` search path, and one lost answer costs glibc's 5 s resolver retry); reads
are linearizable (they need the group's quorum and leader, as a TiKV read does), writes are compare-and-swap
transactions in one group, so a transfer is atomic or not done. Nothing here decides availability: a paused
or cut-off leader holds its group's requests until etcd's own election (10 s, TiKV's timing) gives it a new one.

Errors as TiDB sends them: ``9005 Region is unavailable`` when no member of the group answered within
the statement's backoff budget, ``9007 Write conflict`` after repeated lost compare-and-swaps.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from chaosdemo_local.simulation.tidb_protocol import SqlFail
from chaosdemo_local.standins.raft_groups import GROUPS, client_url

__all__ = ["EtcdBackend", "Peers"]

log = logging.getLogger("tidb-standin")
TRY_SECONDS = 3.0  # one member's chance, as a TiKV request's timeout before the next peer is tried
BUDGET_SECONDS = 20.0  # all tries of one call, as TiDB's backoff budget
SUSPECT_SECONDS = 5.0  # a peer that failed is tried last for this long
LEADER_EVERY = 2.0  # how often a group's leader is asked, beside its requests
SLOW_SECONDS = 2.0  # a call that took longer is logged, with its tries
KEEPALIVE_SECONDS = 13.0  # TiDB's grpc-keepalive-time 10 s + grpc-keepalive-timeout 3 s


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b: str) -> str:
    return base64.b64decode(b).decode()


def _end_of(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def store_ids(pd_url: str) -> dict[str, str]:
    """Each TiKV pod's PD store id, from PD's store list (a store's address starts with its pod's name)."""
    with urllib.request.urlopen(f"{pd_url}/pd/api/v1/stores", timeout=3) as r:
        stores = json.loads(r.read()).get("stores") or []
    return {str(s["store"]["address"]).split(".")[0]: str(s["store"]["id"]) for s in stores}


class EtcdSaid(Exception):
    """An answer of etcd's other than 200: its status and the start of its text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text


def _ask(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> tuple[int, bytes,
                                                                                     http.client.HTTPConnection]:
    """One POST on ``conn``: its status and body; a connection that failed is closed."""
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        return answer.status, answer.read(), conn
    except (OSError, http.client.HTTPException):
        conn.close()
        raise


class Members:
    """HTTP connections kept open to each member (idle ones reused), each member's address resolved once: a
    connection that failed is closed and the member's address looked up again at its next use, as a pod
    started again has a new IP.

    Nothing is trusted longer than TiDB's gRPC keepalive would trust it (``tikv-client.grpc-keepalive-time``
    10 s, then ``grpc-keepalive-timeout`` 3 s; client-go's ``DefaultTiKVClient``): a connection idle that long
    is closed rather than reused, and an address looked up that long ago is looked up again before a new
    connection, as gRPC re-resolves a name when it reconnects. Without it, a pod whose node was killed and
    came back with a new IP was sent requests at its old address, each waiting out a connect timeout (seen on
    kind: a statement on rows the next fault never touched held 5 s).
    """

    def __init__(self, url_of: Callable[[str, int], str], keepalive: float = KEEPALIVE_SECONDS) -> None:
        self.url_of, self.keepalive = url_of, keepalive
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, int], list[tuple[http.client.HTTPConnection, float]]] = {}
        self._ips: dict[str, tuple[str, float]] = {}  # host -> its address and when it was looked up
        self._closed = False

    def _ip(self, host: str, port: int) -> str:
        with self._lock:
            ip, at = self._ips.get(host, ("", 0.0))
        if not ip or time.monotonic() - at > self.keepalive:
            ip = str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
            with self._lock:
                self._ips[host] = (ip, time.monotonic())
        return ip

    def _kept(self, pod: str, group: int) -> http.client.HTTPConnection | None:
        """An idle connection to the member used within the keepalive; older ones are closed."""
        with self._lock:
            idle = self._idle.get((pod, group)) or []
            while idle:
                conn, since = idle.pop()
                if time.monotonic() - since <= self.keepalive:
                    return conn
                conn.close()
        return None

    def post(self, pod: str, group: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = urlsplit(self.url_of(pod, group))
        host, port = url.hostname or "", url.port or 80
        conn = self._kept(pod, group)
        try:
            status, data, conn = self._send(conn, host, port, path, body)
        except (OSError, http.client.HTTPException):
            with self._lock:  # the pod may have a new address: look it up again, and drop what went to the old
                self._ips.pop(host, None)
                for c, _ in self._idle.pop((pod, group), []):
                    c.close()
            raise
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._idle.setdefault((pod, group), []).append((conn, time.monotonic()))
        if status != 200:
            raise EtcdSaid(status, data[:200].decode(errors="replace"))
        out: dict[str, Any] = json.loads(data or b"{}")
        return out

    def _send(self, conn: http.client.HTTPConnection | None, host: str, port: int, path: str,
              body: dict[str, Any]) -> tuple[int, bytes, http.client.HTTPConnection]:
        """One request; a kept connection the member had closed meanwhile is replaced once, as HTTP clients do."""
        if conn is not None:
            try:
                return _ask(conn, path, body)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                pass
        return _ask(http.client.HTTPConnection(self._ip(host, port), port, timeout=TRY_SECONDS), path, body)

    def close(self) -> None:
        """Every kept connection closed; one still out is closed when it comes back."""
        with self._lock:
            self._closed = True
            for conns in self._idle.values():
                for c, _ in conns:
                    c.close()
            self._idle.clear()


class Peers:
    """The members of every raft group, reached through etcd's JSON gateway as TiDB reaches a region's peers."""

    def __init__(self, pods: list[str], url_of: Callable[[str, int], str]) -> None:
        self.pods, self.members = pods, Members(url_of)
        self.leaders: dict[int, str] = {}  # group -> the pod its last status named leader
        self._asked: dict[int, float] = {}  # group -> when its leader was last asked
        self._asking: set[asyncio.Task[None]] = set()
        # Calls wait on the network in threads of their own: a member that never answers holds one thread for
        # TRY_SECONDS, never the calls to the other groups (asyncio's default pool has 6 threads on 2 cores).
        self._threads = ThreadPoolExecutor(max_workers=256, thread_name_prefix="etcd")
        self._suspect: dict[tuple[int, str], float] = {}  # (group, pod) -> tried last until then

    def _order(self, group: int) -> list[str]:
        """The group's last known leader first, then the other peers; a peer that just failed goes last, as
        TiDB's region cache marks a store it could not reach."""
        first = self.leaders.get(group, self.pods[group % len(self.pods)])
        pods = [first, *(p for p in self.pods if p != first)]
        now = time.monotonic()
        return sorted(pods, key=lambda p: self._suspect.get((group, p), 0.0) > now)

    async def call(self, group: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request to a group, to its last known leader first, then the others, within the budget; one that
        took over SLOW_SECONDS is logged with each try, so a slow statement can be told from the pod's log."""
        start, last = time.monotonic(), "no member tried"
        deadline, tries = start + BUDGET_SECONDS, []
        loop = asyncio.get_running_loop()
        while time.monotonic() < deadline:
            for pod in self._order(group):
                t0 = time.monotonic()
                try:
                    out = await loop.run_in_executor(self._threads, self.members.post, pod, group, path, body)
                except EtcdSaid as e:  # etcd said no: leader changed, no leader, timeout
                    if e.code == 400:  # the request itself is wrong: no peer will take it
                        raise SqlFail(1105, f"STAND-IN raft group {group} refused the request: {e.text}") from None
                    last = f"{pod}: {e}"
                except (OSError, ValueError, http.client.HTTPException) as e:
                    last = f"{pod}: {e}"
                else:
                    self._suspect.pop((group, pod), None)
                    self._ask_leader_soon(group)
                    if time.monotonic() - start > SLOW_SECONDS:
                        log.warning("raft group %s %s took %.1f s: %s; then %s answered in %.1f s", group, path,
                                    time.monotonic() - start, "; ".join(tries) or "-", pod, time.monotonic() - t0)
                    return out
                tries.append(f"{last[:120]} after {time.monotonic() - t0:.1f} s")
                self._suspect[(group, pod)] = time.monotonic() + SUSPECT_SECONDS
                self._ask_leader_soon(group, now=True)
            await asyncio.sleep(0.5)  # every peer tried: back off, as TiDB does
        raise SqlFail(9005, f"Region is unavailable (STAND-IN raft group {group}: {last})")

    def _ask_leader_soon(self, group: int, *, now: bool = False) -> None:
        """Who leads the group, asked beside the requests (at most every LEADER_EVERY s, or at once after a peer
        failed): a follower forwards a request to its leader, so an answer says nothing of who leads, and TiDB
        sends a region's requests to its leader, as its region cache learns it."""
        if time.monotonic() - self._asked.get(group, -1e9) < (0.5 if now else LEADER_EVERY):
            return
        self._asked[group] = time.monotonic()

        async def ask() -> None:
            try:
                leader = await self.leader_of(group)
            except SqlFail:
                return
            if leader:
                self.leaders[group] = leader

        task = asyncio.ensure_future(ask())
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)

    def close(self) -> None:
        self.members.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def leader_of(self, group: int) -> str:
        status = await self.call(group, "/v3/maintenance/status", {})
        members = await self.call(group, "/v3/cluster/member/list", {})
        names = {m["ID"]: m.get("name", "") for m in members.get("members", [])}
        return str(names.get(status.get("leader", ""), ""))


class EtcdBackend:
    """A ``Backend`` (``simulation/tidb_protocol.py``) over the raft groups of one TidbCluster's stores."""

    def __init__(self, cluster: str, namespace: str, pd_url: str, stores: int = 3,
                 url_of: Callable[[str, int], str] | None = None) -> None:
        domain = f"{cluster}-tikv-peer.{namespace}.svc"
        self.peers = Peers([f"{cluster}-tikv-{i}" for i in range(stores)],
                           url_of or (lambda pod, group: client_url(pod, domain, group)))
        self.call = self.peers.call
        self.pd_url = pd_url.rstrip("/")
        self._store_ids: dict[str, str] = {}
        self._splits: dict[str, tuple[int, int]] = {}  # db -> (rows per part, parts), once split
        # Rows locked while written, as TiDB's pessimistic transactions lock them: a second writer waits.
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    def close(self) -> None:  # its connections to the raft members, once the SQL server that used it is closed
        self.peers.close()

    async def _get(self, group: int, key: str) -> tuple[str | None, str]:
        out = await self.call(group, "/v3/kv/range", {"key": _b64(key)})
        kvs = out.get("kvs") or []
        return (_text(kvs[0]["value"]), kvs[0]["mod_revision"]) if kvs else (None, "0")

    async def _put(self, group: int, key: str, value: str) -> None:
        await self.call(group, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    # ---------------------------------------------------------------- the canary's data

    async def _layout(self, db: str) -> tuple[int, int]:
        """How the table is split: read once from group 0, then kept (it never changes after the split)."""
        if db not in self._splits:
            split = (await self._get(0, f"c/{db}/split"))[0]
            if split is None:
                return 1, 1  # not split yet: every row in group 0
            step, parts = split.split(",")
            self._splits[db] = (int(step), int(parts))
        return self._splits[db]

    async def _group(self, db: str, row: int) -> int:
        step, parts = await self._layout(db)
        return min(row // max(1, step), parts - 1) % GROUPS

    async def exists(self, db: str) -> bool:
        return (await self._get(0, f"c/{db}/db"))[0] is not None

    async def owner(self, db: str) -> str | None:
        return (await self._get(0, f"c/{db}/owner"))[0]

    async def create(self, db: str) -> None:
        await self._put(0, f"c/{db}/db", "1")

    async def set_owner(self, db: str, uid: str) -> None:
        await self._put(0, f"c/{db}/owner", uid)

    async def insert(self, db: str, rows: dict[int, int]) -> None:
        for row, balance in rows.items():
            await self._put(await self._group(db, row), f"c/{db}/a/{row:06d}", f"{balance},0")

    async def split(self, db: str, accounts: int, parts: int) -> int:
        """The table in GROUPS parts, one per raft group (rows inserted before move to their group)."""
        n = GROUPS
        step = max(1, accounts // n)
        old = await self._rows(db, 0)
        await self._put(0, f"c/{db}/split", f"{step},{n}")
        self._splits[db] = (step, n)
        for key, (value, _) in old.items():
            row = int(key.rsplit("/", 1)[1])
            group = min(row // step, n - 1) % GROUPS
            if group != 0:
                await self._put(group, key, value)
                await self.call(0, "/v3/kv/deleterange", {"key": _b64(key)})
        return n

    async def regions(self, db: str) -> list[tuple[int, str]]:
        step, parts = await self._layout(db)
        out = []
        for i in range(parts):
            out.append((i * step, await self._store_id(await self.peers.leader_of(i % GROUPS))))
        return out

    async def _store_id(self, pod: str) -> str:
        if pod not in self._store_ids:
            self._store_ids.update(await asyncio.to_thread(store_ids, self.pd_url))
        return self._store_ids.get(pod, "0")

    async def read(self, db: str, row: int) -> int | None:
        value, _ = await self._get(await self._group(db, row), f"c/{db}/a/{row:06d}")
        return None if value is None else int(value.split(",")[0])

    async def touch(self, db: str, row: int) -> None:
        await self._swap(db, [(row, 0)], touched=True)

    async def apply(self, db: str, moves: list[tuple[int, int]]) -> None:
        await self._swap(db, moves, touched=False)

    async def _swap(self, db: str, moves: list[tuple[int, int]], *, touched: bool) -> None:
        """The rows locked in order, then read and written back if none changed meanwhile: one etcd transaction
        in one group."""
        locks = [self._locks.setdefault((db, row), asyncio.Lock()) for row in sorted({r for r, _ in moves})]
        for lock in locks:
            await lock.acquire()
        try:
            await self._swap_locked(db, moves, touched=touched)
        finally:
            for lock in locks:
                lock.release()

    async def _swap_locked(self, db: str, moves: list[tuple[int, int]], *, touched: bool) -> None:
        merged: dict[int, int] = {}
        for row, delta in moves:  # a transfer to the same account: one row, its deltas summed
            merged[row] = merged.get(row, 0) + delta
        moves = sorted(merged.items())
        groups = {await self._group(db, row) for row, _ in moves}
        if len(groups) != 1:
            raise SqlFail(1105, "the STAND-IN keeps a transaction within one part of the table")
        group = groups.pop()
        for _ in range(5):
            reads = {row: await self._get(group, f"c/{db}/a/{row:06d}") for row, _ in moves}
            compare, puts = [], []
            for row, delta in moves:
                value, rev = reads[row]
                if value is None:
                    continue
                balance, count = (int(x) for x in value.split(","))
                key = _b64(f"c/{db}/a/{row:06d}")
                compare.append({"key": key, "target": "MOD", "mod_revision": rev, "result": "EQUAL"})
                new = f"{balance},{count + 1}" if touched else f"{balance + delta},{count}"
                puts.append({"request_put": {"key": key, "value": _b64(new)}})
            out = await self.call(group, "/v3/kv/txn", {"compare": compare, "success": puts})
            if out.get("succeeded") or not compare:
                return
        raise SqlFail(9007, "Write conflict")

    async def _rows(self, db: str, group: int) -> dict[str, tuple[str, str]]:
        prefix = f"c/{db}/a/"
        out = await self.call(group, "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(_end_of(prefix))})
        return {_text(kv["key"]): (_text(kv["value"]), kv["mod_revision"]) for kv in out.get("kvs") or []}

    async def total(self, db: str) -> int:
        total = 0
        for group in range(GROUPS):
            total += sum(int(v.split(",")[0]) for v, _ in (await self._rows(db, group)).values())
        return total

    async def drop(self, db: str) -> None:
        self._splits.pop(db, None)
        self._locks = {k: v for k, v in self._locks.items() if k[0] != db}
        prefix = f"c/{db}/"
        for group in range(GROUPS):
            await self.call(group, "/v3/kv/deleterange", {"key": _b64(prefix), "range_end": _b64(_end_of(prefix))})

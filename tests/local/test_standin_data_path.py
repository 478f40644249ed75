"""The kind tier's TiDB STAND-IN data path on real consensus, without kind: three etcd raft groups (the
control plane's own etcd build) of three members each, one "store" per member set, the TiDB STAND-IN's
MySQL protocol over them (standins/etcd_backend.py), and the operator's SQL canary (run/canary.py)
through it. A store is paused with SIGSTOP, as process-pause does on kind, and what the canary sees is
whatever etcd's election makes of it: nothing here models availability.

Time is scaled down (heartbeat 200 ms, election 2 s) so the test takes seconds; on kind it is TiKV's. The
machine may be busy (CI runs a build beside the tests), so the assertions compare the rows the paused store
led with the others, rather than expect the others never to time out.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chaosdemo.api.models import CanarySpec
from chaosdemo.clients.sql import SqlPool, SqlTarget
from chaosdemo.core.canary import TIMEOUT, Budget, impact
from chaosdemo.core.canary_plan import Plan, database_for
from chaosdemo.run.canary import Canary, pool_size
from chaosdemo_local.cluster.control_plane import find_binaries, free_port
from chaosdemo_local.simulation.tidb_protocol import SqlServer
from chaosdemo_local.standins.etcd_backend import EtcdBackend

STORES = {"basic-tikv-0": "1", "basic-tikv-1": "4", "basic-tikv-2": "5"}
PODS = list(STORES)
UID = "5e1f0000-0000-4000-8000-000000000031"


class Groups:
    """3 raft groups x 3 members on 127.0.0.1, each member on two free ports of its own (client, peer)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {(i, g): (free_port(), free_port()) for i in range(3) for g in range(3)}
        self.procs: dict[tuple[int, int], subprocess.Popen[bytes]] = {}

    def client(self, pod: str, group: int) -> str:
        return f"http://127.0.0.1:{self.ports[(PODS.index(pod), group)][0]}"

    def start(self) -> None:
        etcd = str(find_binaries() / "etcd")
        for g in range(3):
            peers = ",".join(f"{p}=http://127.0.0.1:{self.ports[(i, g)][1]}" for i, p in enumerate(PODS))
            for i, pod in enumerate(PODS):
                port, peer = self.ports[(i, g)]
                self.procs[(i, g)] = subprocess.Popen(
                    [etcd, "--name", pod, "--data-dir", str(self.workdir / f"{pod}-{g}"),
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--listen-client-urls", f"http://127.0.0.1:{port}", "--advertise-client-urls",
                     f"http://127.0.0.1:{port}", "--initial-cluster", peers, "--initial-cluster-token", f"g{g}",
                     "--heartbeat-interval", "200", "--election-timeout", "2000", "--log-level", "error"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def post(self, url: str, path: str, body: dict[str, object]) -> dict[str, object]:
        req = urllib.request.Request(url + path, data=json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=2) as r:
            out: dict[str, object] = json.loads(r.read())
            return out

    def lead(self, group: int, pod: str, deadline: float = 30) -> None:
        """Group ``group``'s lead on ``pod``'s member, once the group has a leader."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                status = self.post(self.client(pod, group), "/v3/maintenance/status", {})
                me, leader = status["header"]["member_id"], status.get("leader")  # type: ignore[index]
                if leader == me:
                    return
                members = self.post(self.client(pod, group), "/v3/cluster/member/list", {})["members"]
                url = next(m["clientURLs"][0] for m in members if m["ID"] == leader)  # type: ignore[union-attr]
                self.post(url, "/v3/maintenance/transfer-leadership", {"targetID": me})
            except (OSError, KeyError, StopIteration, ValueError):
                time.sleep(0.2)
        raise TimeoutError(f"group {group} would not take {pod} as its leader")

    def signal(self, pod: str, sig: int) -> None:
        for (i, _), proc in self.procs.items():
            if PODS[i] == pod:
                os.kill(proc.pid, sig)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


@pytest.fixture
def groups(tmp_path: Path) -> Iterator[Groups]:
    g = Groups(tmp_path)
    try:
        g.start()
        for group, pod in enumerate(PODS):
            g.lead(group, pod)
        yield g
    finally:
        g.stop()


@pytest.fixture
def pd() -> Iterator[str]:
    """PD's store list, as the PD STAND-IN serves it: which store id each TiKV pod's store has."""
    body = json.dumps({"stores": [{"store": {"id": int(i), "address": f"{p}.basic-tikv-peer.tidb-cluster.svc:20160"}}
                                  for p, i in STORES.items()]}).encode()

    class Stores(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stores)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_paused_store_costs_the_rows_it_leads_until_etcd_elects_and_the_bank_holds(
        groups: Groups, pd: str) -> None:
    backend = EtcdBackend("basic", "tidb-cluster", pd, url_of=groups.client)
    server = SqlServer(backend)
    port = await server.start()
    spec = CanarySpec(enabled=True, rate_per_second=20, accounts=30, statement_timeout_seconds=1.5)
    pool = SqlPool(SqlTarget("127.0.0.1", port, "root", ""), size=pool_size(spec), timeout=2.0)
    canary = Canary(pool, spec, Plan(database_for(UID), 30), UID, seed=3)
    try:
        await canary.prepare(stores=3)
        assert canary.layout is not None and canary.layout.leaders == ("1", "4", "5"), canary.layout
        canary.pool.timeout = spec.statement_timeout_seconds
        canary.start(0.0)
        await asyncio.sleep(3.2)
        await canary.mark_injected("4")  # basic-tikv-1: it leads group 1, rows 10 to 19
        groups.signal("basic-tikv-1", signal.SIGSTOP)
        try:
            await asyncio.sleep(6)
        finally:
            groups.signal("basic-tikv-1", signal.SIGCONT)
        await asyncio.sleep(2)
        await canary.stop()
        assert canary.injected is not None
        i = impact(canary.tally, baseline=(0, 3), injected=canary.injected, now=canary.now(),
                   budget=Budget(20, 0.5, None, 60), window=1, led=canary.led)
        assert canary.led == (1,) and canary.share == pytest.approx(1 / 3)
        mine, rest = i.affected[1] / max(1, sum(i.affected)), i.others[1] / max(1, sum(i.others))
        assert mine > 0.2 and mine > 3 * rest, f"the paused leader's rows failed: {i.affected} against {i.others}"
        assert i.others[0] > 0, "groups 0 and 2 kept their quorum and leaders, and served"
        assert TIMEOUT in i.failures, i.failures
        assert i.served_again is not None or i.unserved_from is None
        assert i.bank_total_held is True, canary.tally.totals_wrong
        after = await canary.read_layout()
        assert after.leaders[1] != "4", "group 1 elected a leader on another store"
    finally:
        await canary.drop()
        await server.close()
        backend.close()

"""The kind tier's PD, TiKV and TiDB STAND-INS take the flags tidb-operator's start scripts pass.

These start real processes' servers on loopback (no Kubernetes): the PD
stand-in's client port tells HTTP/1.1 (PD's API) from HTTP/2 (its etcd) as
PD's does, and answers what tidb-operator's PD client asks.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosdemo_local.simulation.pd_api import answer, config_json, member_json
from chaosdemo_local.simulation.pd_model import PDModel
from chaosdemo_local.standins import pd_server

ADVERTISED = "http://basic-pd-0.basic-pd-peer.tidb-cluster.svc:2379"


def flags(tmp_path: Path, *extra: str) -> list[str]:
    """What tidb-operator v1.6.6's PD start script runs /pd-server with, for the first start."""
    return [f"--data-dir={tmp_path / 'pd'}", "--name=basic-pd-0", "--peer-urls=http://0.0.0.0:2380",
            "--advertise-peer-urls=http://basic-pd-0.basic-pd-peer.tidb-cluster.svc:2380",
            "--client-urls=http://0.0.0.0:2379", f"--advertise-client-urls={ADVERTISED}",
            f"--config={tmp_path / 'pd.toml'}", *extra]


def parsed(argv: list[str]) -> PDModel:
    return pd_server.model_from(pd_server.parser().parse_known_args(argv)[0])


def test_the_pd_standin_learns_its_cluster_and_member_from_pds_own_flags(tmp_path: Path) -> None:
    (tmp_path / "pd.toml").write_text('[schedule]\nmax-store-down-time = "5m"\n[replication]\nmax-replicas = 3\n')
    m = parsed(flags(tmp_path, "--initial-cluster=basic-pd-0=http://basic-pd-0.basic-pd-peer.tidb-cluster.svc:2380"))
    assert (m.cluster, m.namespace) == ("basic", "tidb-cluster")
    member = member_json(m)
    assert member["name"] == "basic-pd-0" and member["client_urls"] == [ADVERTISED]
    assert config_json(m)["schedule"]["max-store-down-time"] == "5m0s", "read from --config, as PD reads pd.toml"


def test_without_a_config_file_pd_keeps_its_defaults(tmp_path: Path) -> None:
    m = parsed(flags(tmp_path))
    assert config_json(m)["schedule"]["max-store-down-time"] == "30m0s"
    assert config_json(m)["replication"]["max-replicas"] == 3


def test_tombstone_stores_are_asked_for_by_state_and_there_are_none() -> None:
    m = PDModel(cluster="basic", namespace="tidb-cluster")
    m.heartbeat("basic-tikv-0", "basic-tikv-0.basic-tikv-peer.tidb-cluster.svc:20160", "p1", 100.0)
    assert answer(m, "GET", "/pd/api/v1/stores", b"", 101.0)[1]["count"] == 1
    assert answer(m, "GET", "/pd/api/v1/stores?state=2", b"", 101.0)[1] == {"count": 0, "stores": []}
    assert answer(m, "GET", "/pd/api/v1/leader", b"", 101.0)[1]["name"] == "basic-pd-0"
    assert answer(m, "POST", "/pd/api/v1/store/1/label", b'{"zone":"a"}', 101.0)[0] == 200


@pytest.fixture
def pd_port() -> Iterator[tuple[int, list[bytes]]]:
    """The PD stand-in's port with a loopback TCP server standing where etcd goes; what that server got."""
    got: list[bytes] = []
    backend = socket.create_server(("127.0.0.1", 0))

    def serve_one() -> None:
        conn, _ = backend.accept()
        with conn:
            data = conn.recv(4096)
            got.append(data)
            conn.sendall(b"from-etcd")

    threading.Thread(target=serve_one, daemon=True).start()
    model = PDModel(cluster="basic", namespace="tidb-cluster")
    server = pd_server.PDPort(("127.0.0.1", 0), pd_server.handler_for(pd_server.Standin(model)))
    server.etcd_port = backend.getsockname()[1]
    server.on_etcd = lambda peer: got.append(b"connected from " + peer[0].encode())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], got
    finally:
        server.shutdown()
        server.server_close()
        backend.close()


def test_one_port_serves_pds_http_api_and_hands_http2_to_etcd(pd_port: tuple[int, list[bytes]]) -> None:
    port, got = pd_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/pd/api/v1/members", timeout=5) as r:
        assert json.load(r)["members"][0]["name"] == "basic-pd-0"
    assert got == [], "an HTTP/1.1 request never reaches etcd"
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(preface[:5])  # a client that sends its preface in pieces
        c.sendall(preface[5:])
        assert c.recv(100) == b"from-etcd"
    assert got == [b"connected from 127.0.0.1", preface], "noted, and the whole preface spliced through, unread"


def test_the_stand_in_images_files_import_on_their_own(tmp_path):
    """The kind tier's stand-in image holds only STANDIN_FILES: each server must import from those alone
    (a package move once left pd_model.py out of the list)."""
    import shutil
    import subprocess
    import sys

    from chaosdemo_local.kind.images import REPO, STANDIN_FILES

    src = REPO / "proving" / "chaosdemo_local"
    for f in STANDIN_FILES:
        (tmp_path / "chaosdemo_local" / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / f, tmp_path / "chaosdemo_local" / f)
    for server in ("pd_server", "tikv_server", "tidb_server", "nslookup", "wget"):
        out = subprocess.run([sys.executable, "-S", "-c", f"import chaosdemo_local.standins.{server}"],
                             cwd=tmp_path, capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{server}: {out.stderr[-400:]}"


def test_the_tikv_standins_even_out_leader_counts_as_pds_balance_leader_does() -> None:
    from chaosdemo_local.standins.raft_groups import group_to_take

    assert group_to_take({0: "t-1", 1: "t-1", 2: "t-2"}, "t-0") == 0, "it leads none; t-1 leads two"
    assert group_to_take({0: "t-1", 1: "t-1", 2: "t-2"}, "t-2") is None, "it leads one already"
    assert group_to_take({0: "t-2", 1: "t-0", 2: "t-1"}, "t-0") is None, "balanced, whoever leads which"
    assert group_to_take({0: "t-1", 2: "t-2"}, "t-0") is None, "a group without a leader is the election's"
    assert group_to_take({0: "t-2", 1: "t-2", 2: "t-2"}, "t-1") == 0


def test_a_store_takes_no_lead_while_its_log_lags_the_leaders_as_tikv_refuses_a_log_gap() -> None:
    from chaosdemo_local.standins.raft_groups import caught_up

    # etcd's JSON gateway sends its uint64 indexes as strings.
    assert caught_up({"raftIndex": "1000"}, {"raftAppliedIndex": "900"}), "100 behind: within 128"
    assert not caught_up({"raftIndex": "1028"}, {"raftAppliedIndex": "900"}), "128 behind: a log gap"
    assert not caught_up({"raftIndex": "1400"}, {}), "nothing applied yet (a store just resumed)"


def until(what: str, check: object, timeout: float = 20.0) -> None:
    import time
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.02)


def test_the_tikv_standins_heartbeat_tick_is_not_held_up_by_a_slow_pd_and_nothing_follows_its_goodbye() -> None:
    """A real HTTP PD that holds the second heartbeat's answer: TiKV's tick hands heartbeats to its PD worker,
    so the ticks go on meanwhile (waiting in the worker's queue, as TiKV's), the held ones are sent once PD
    answers, and the goodbye is the last word."""
    import queue
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from chaosdemo_local.standins.tikv_server import heartbeat_until

    heard: list[str] = []
    release = threading.Event()

    class PD(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            what = self.path.rsplit("/", 1)[1]
            heard.append(what)
            if what == "heartbeat" and len(heard) == 2:
                release.wait(30)  # a slow PD, until the test has seen the ticks go on
            body = b'{"heartbeat_interval_seconds": 0.05}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), PD)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    going, stop = threading.Event(), threading.Event()
    store = {"pod": "basic-tikv-0", "address": "basic-tikv-0:20160", "process": "p1"}
    tasks: queue.Queue[float] = queue.Queue()
    ticker = threading.Thread(target=heartbeat_until, args=(going, stop, f"http://127.0.0.1:{server.server_port}",
                                                            store, 0.05, tasks))
    try:
        ticker.start()
        until("PD holds the second heartbeat", lambda: len(heard) >= 2)
        until("three more ticks while PD holds it", lambda: tasks.qsize() >= 3)
        release.set()
        until("the held ticks sent once PD answered", lambda: heard.count("heartbeat") >= 5)
    finally:
        release.set()
        going.set()
        ticker.join(timeout=10)
        stop.set()
        server.shutdown()
        server.server_close()
    assert heard[-1] == "goodbye", f"no heartbeat after the goodbye: {heard[-5:]}"


def test_the_tidb_standin_keeps_its_connections_to_the_members_and_looks_an_address_up_again_after_a_failure() -> None:
    """As TiDB keeps a gRPC connection to each store: one connection for many requests, a connection the member
    closed replaced once, and a member that does not answer forgotten with its address (a new pod, a new IP)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from chaosdemo_local.standins.etcd_backend import EtcdSaid, Members

    peers: list[tuple[str, int]] = []

    class Etcd(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            peers.append(self.client_address)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = 503 if json.loads(body).get("fail") else 200
            data = json.dumps({"path": self.path}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            if json.loads(body).get("close"):  # closed after answering, without saying so, as an idle timeout does
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Etcd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    with socket.socket() as s:  # a port nothing listens on: the member that does not answer
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    members = Members(lambda pod, group: f"http://localhost:{dead if pod == 'gone' else port + group}")
    try:
        for _ in range(5):
            assert members.post("tikv-0", 0, "/v3/kv/range", {}) == {"path": "/v3/kv/range"}
        assert len(set(peers)) == 1, f"five requests, one connection: {peers}"
        members.post("tikv-0", 0, "/v3/kv/range", {"close": True})  # the member closes it after answering
        assert members.post("tikv-0", 0, "/v3/kv/range", {}) == {"path": "/v3/kv/range"}, "replaced, not failed"
        assert len(set(peers)) == 2
        with pytest.raises(EtcdSaid) as said:
            members.post("tikv-0", 0, "/v3/kv/put", {"fail": True})
        assert said.value.code == 503
        assert members.post("tikv-0", 0, "/v3/kv/range", {}) and len(set(peers)) == 2, "an answer keeps it"
        with pytest.raises(OSError):
            members.post("gone", 0, "/v3/kv/range", {})
        assert "localhost" not in members._ips, "looked up again at the next use"
        assert members.post("tikv-1", 0, "/v3/kv/range", {}) and "localhost" in members._ips, "a new connection"
        # Idle past TiDB's gRPC keepalive: neither the connection nor the address is trusted any more.
        members.keepalive = 0.2
        time.sleep(0.3)
        looked_up = members._ips["localhost"][1]
        assert members.post("tikv-1", 0, "/v3/kv/range", {}) and len(set(peers)) == 4, "a new connection"
        assert members._ips["localhost"][1] > looked_up, "its address looked up again"
        members.keepalive = 60.0
        assert members.post("tikv-1", 0, "/v3/kv/range", {}) and len(set(peers)) == 4, "within it: kept"
    finally:
        members.close()
        server.shutdown()
        server.server_close()

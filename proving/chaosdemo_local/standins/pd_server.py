"""PD STAND-IN: PD's HTTP API on :2379, fed only by the TiKV stand-ins' heartbeats.

    python -m chaosdemo_local.standins.pd_server --cluster basic --namespace tidb-cluster
    /pd-server --name=basic-pd-0 --advertise-client-urls=http://basic-pd-0.basic-pd-peer.tidb-cluster.svc:2379 ...

The second form is how tidb-operator's start script runs it: the flags are
PD's own, the cluster and namespace are read from the advertised URL and
``schedule.max-store-down-time`` from ``--config``.

Like PD, it serves an etcd on the same port (a real one, see ``PDPort``).
Besides PD's own routes it takes ``POST /chaosdemo-standin/heartbeat`` and
``/goodbye`` (what a TiKV stand-in sends instead of PD's gRPC, proxied to the
leader as any API call) and tells what the leader heard at
``GET /chaosdemo-standin/events``, so tests can see what a real kubelet did to a
TiKV process (a SIGTERM, a restart) from PD's side; ``member-events`` is what
the member asked heard itself (tidb-operator's etcd connections, its leadership).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from chaosdemo_local.simulation.pd_api import answer, config_json, member_json
from chaosdemo_local.simulation.pd_model import (
    CLUSTER_ID,
    PDModel,
    Timing,
    load_saved,
    parse_go_duration,
    regions_record,
    rfc3339,
    store_record,
)
from chaosdemo_local.standins.pd_members import CHECK_TIMEOUT, LEASE_TTL, Election, Etcd, check_health

log = logging.getLogger("pd-standin")
STORES_KEY = f"/pd/{CLUSTER_ID}/raft/s/"  # where PD keeps each store's metadata
REGIONS_KEY = f"/pd/{CLUSTER_ID}/chaosdemo-standin/regions"
PERSIST_EVERY = 300.0  # PD's storePersistInterval: a store's metadata is saved at most this often


class Standin:
    """One PD member: its model while it leads (``leading``), else the leader's answers through it."""

    def __init__(self, model: PDModel, fresh: Callable[[], PDModel] | None = None) -> None:
        self.model, self.lock = model, threading.Lock()
        self.events: deque[dict[str, Any]] = deque(maxlen=500)
        self.fresh = fresh  # a new model for this cluster, when leading starts
        self.etcd: Etcd | None = None
        self.election: Election | None = None
        self.leading = True  # without etcd: the only member, always leading
        self.saved: dict[int, tuple[float, str]] = {}  # store id -> (when saved, its incarnation then)
        self.saved_regions = ""

    def note(self, pod: str, what: str, detail: str, now: float) -> None:
        self.events.append({"at": rfc3339(now), "pod": pod, "event": what, "detail": detail})
        log.info("%s: %s %s", pod, what, detail)

    def heartbeat(self, doc: dict[str, Any], now: float) -> dict[str, Any]:
        pod, process = str(doc["pod"]), str(doc["process"])
        with self.lock:
            known = self.model.stores.get(pod)
            if known is None or known.incarnation != process:
                self.note(pod, "process-started", f"TiKV process {process} at {doc['address']}", now)
            st = self.model.heartbeat(pod, str(doc["address"]), process, now)
            return {"store_id": st.id, "heartbeat_interval_seconds": self.model.timing.s("heartbeat")}

    def goodbye(self, doc: dict[str, Any], now: float) -> dict[str, Any]:
        pod = str(doc["pod"])
        with self.lock:
            self.model.stopped(pod, now)
            self.note(pod, "process-stopping", str(doc.get("reason", "")), now)
        return {}

    def lead(self, leading: bool) -> None:
        """The election's word: on winning, start from what the last leader saved (stale heartbeats and all)."""
        if not leading or self.etcd is None or self.fresh is None:
            with self.lock:
                self.leading = False
            return
        stores = [json.loads(doc) for doc in self.etcd.scan(STORES_KEY)]
        regions = self.etcd.get(REGIONS_KEY)
        model, now = self.fresh(), time.time()
        load_saved(model, stores, json.loads(base64.b64decode(regions["value"])) if regions else None, now)
        with self.lock:
            self.model, self.leading = model, True
            self.saved = {st.id: (now, st.incarnation) for st in model.stores.values()}
            self.saved_regions = ""
            self.note(model.member_name, "pd-leader", f"elected; {len(stores)} stores loaded from etcd", now)

    def due(self, now: float) -> list[tuple[str, str]]:
        """What to save now, as PD does: a store when it (re)starts or 5 minutes (scaled) after it was last
        saved (``storePersistInterval``); the regions when their leaders moved (PD's region syncer)."""
        out = []
        every = PERSIST_EVERY * self.model.timing.scale
        for st in self.model.stores.values():
            when, incarnation = self.saved.get(st.id, (0.0, ""))
            if st.last_heartbeat and (incarnation != st.incarnation or now - when >= every):
                self.saved[st.id] = (now, st.incarnation)
                out.append((f"{STORES_KEY}{st.id:020d}", json.dumps(store_record(st))))
        regions = json.dumps(regions_record(self.model))
        if self.model.regions and regions != self.saved_regions:
            self.saved_regions = regions
            out.append((REGIONS_KEY, regions))
        return out

    def tick(self, stop: threading.Event, period: float) -> None:
        while not stop.wait(period):
            now = time.time()
            with self.lock:
                if not self.leading:
                    continue
                self.model.infer_silence(now)
                self.model.advance(now)
                writes = self.due(now) if self.etcd is not None else []
            for key, value in writes:
                try:
                    self.etcd.put(key, value)  # type: ignore[union-attr]
                except OSError as e:
                    log.warning("could not save %s: %s", key, e)


LOCAL = {"/pd/api/v1/ping", "/chaosdemo-standin/member-events"}  # what a member answers itself


def handler_for(s: Standin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, data: bytes, kind: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting

        def _serve(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path.rstrip("/")
            if path in LOCAL:
                with s.lock:
                    return self._answer(200, list(s.events) if path.endswith("events") else "")
            if s.etcd is not None and path.startswith("/v3/"):
                try:
                    return self._send(*relay(s.etcd.local + self.path, method, body, {}, timeout=10))
                except OSError as e:
                    return self._answer(503, f"etcd: {e}")
            leads = s.leading and (s.election is None or s.election.holds())
            if not leads and not self.headers.get("PD-Allow-Follower-Handle"):
                return self._send(*forward(s, method, self.path, body, self.headers.get("PD-Redirector")))
            try:
                self._answer(*lead_answer(s, method, path, self.path, body))
            except (KeyError, ValueError) as e:
                self._answer(400, f"bad request: {e}")
            except OSError as e:
                self._answer(500, f"etcd: {e}")

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, fmt: str, *args: Any) -> None:
            return

    return Handler


def lead_answer(s: Standin, method: str, path: str, target: str, body: bytes) -> tuple[int, Any]:
    """The leader's answer: the stand-in's own routes, the members from etcd, and PD's API from the model."""
    now = time.time()
    if method == "POST" and path == "/chaosdemo-standin/heartbeat":
        return 200, s.heartbeat(json.loads(body), now)
    if method == "POST" and path == "/chaosdemo-standin/goodbye":
        return 200, s.goodbye(json.loads(body), now)
    if method == "GET" and path == "/chaosdemo-standin/events":
        with s.lock:
            return 200, list(s.events)
    if s.etcd is not None and method == "GET" and path in MEMBER_ROUTES:
        return members_answer(s, path)
    with s.lock:
        return answer(s.model, method, target, body, now)


def relay(url: str, method: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes, str]:
    """One request passed on as it came: (status, body, content type) of the answer."""
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "application/json")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "text/plain")


def forward(s: Standin, method: str, target: str, body: bytes, redirected: str | None) -> tuple[int, bytes, str]:
    """A follower proxies the request to the PD leader, as PD's redirector does
    (``pkg/utils/apiutil/serverapi/middleware.go``): 503 "no leader" when it knows none, 500 when the request
    was already redirected once (no loops), 500 "redirect failed" when the leader does not answer."""
    text = "text/plain; charset=utf-8"
    if redirected:
        return 500, b"redirect to not leader\n", text
    leader = s.election.leader if s.election is not None else None
    me = s.election.me.get("name", "") if s.election is not None else ""
    if leader is None or not leader.get("client_urls") or leader.get("name") == me:
        return 503, b"no leader\n", text  # or this member, past its lease: it leads no more
    for url in leader["client_urls"]:
        try:
            return relay(url + target, method, body, {"PD-Redirector": me, "Content-Type": "application/json"},
                         timeout=10)
        except OSError:
            continue
    return 500, b"redirect failed\n", text


MEMBER_ROUTES = {"/pd/api/v1/members", "/pd/api/v1/leader", "/pd/api/v1/health"}


def members_answer(s: Standin, path: str) -> tuple[int, Any]:
    """The leader's answer on its members, from its etcd: the member list, the PD leader, each one's ping."""
    assert s.etcd is not None and s.election is not None
    members = s.etcd.members()
    if path == "/pd/api/v1/health":
        return 200, check_health(members, CHECK_TIMEOUT * min(1.0, max(s.model.timing.scale, 1 / 3)))
    leader = s.election.leader or {}
    if path == "/pd/api/v1/leader":
        return 200, leader
    _, etcd_leader = s.etcd.ids()
    return 200, {"header": {"cluster_id": CLUSTER_ID}, "members": members, "leader": leader,
                 "etcd_leader": next((m for m in members if m["member_id"] == etcd_leader), {})}


H2_PREFACE = b"PRI * HTTP/2.0"


class PDPort(ThreadingHTTPServer):
    """PD's client port, which real PD shares between its HTTP API and its embedded etcd's gRPC.

    tidb-operator reaches both there: HTTP/1.1 for the PD API, and an etcd client
    (gRPC, HTTP/2 with prior knowledge) for the TiDB topology keys. A connection
    that opens with HTTP/2's preface is spliced through to a real etcd of ours on
    loopback (``etcd_port``); every other one is PD's API.
    """

    daemon_threads = True
    etcd_port = 0
    on_etcd: Any = None  # called with the client's address for each etcd connection

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.etcd_port and _peek(request, len(H2_PREFACE)) == H2_PREFACE:
            if self.on_etcd is not None:
                self.on_etcd(client_address)
            _splice(request, socket.create_connection(("127.0.0.1", self.etcd_port), timeout=5))
            return
        super().finish_request(request, client_address)


def _peek(conn: socket.socket, n: int, wait: float = 5.0) -> bytes:
    """The first bytes of ``conn``, left unread: as soon as they tell HTTP/2's preface from anything else."""
    deadline, head = time.monotonic() + wait, b""
    conn.settimeout(wait)
    try:
        while time.monotonic() < deadline:
            head = conn.recv(n, socket.MSG_PEEK)
            if not head or len(head) >= n or not H2_PREFACE.startswith(head):
                break
            time.sleep(0.005)
    except OSError:
        pass
    finally:
        conn.settimeout(None)
    return head


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    b.settimeout(None)

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    other = threading.Thread(target=pump, args=(b, a), daemon=True)
    other.start()
    pump(a, b)
    other.join()
    b.close()


def member_etcd(a: argparse.Namespace, client_url: str) -> Etcd | None:
    """This member's etcd, from PD's own flags, if the image carries etcd (``--etcd`` or ``etcd`` on PATH)."""
    binary = a.etcd or shutil.which("etcd")
    if not binary:
        log.info("no etcd on PATH: PD's etcd (gRPC on :2379) is not served, and this is the only member")
        return None
    fallback = f"http://127.0.0.1:{a.etcd_port + 1}"
    peer = (a.advertise_peer_urls or a.peer_urls or fallback).split(",")[0]
    listen = (a.peer_urls or fallback).split(",")[0]
    return Etcd(name=a.name or "pd-standin", data_dir=os.path.join(a.data_dir or "/tmp", "etcd-standin"),
                client_port=a.etcd_port, peer_url=peer, listen_peer_url=listen, client_url=client_url,
                binary=binary, time_scale=a.time_scale)


def pd_flags(p: argparse.ArgumentParser) -> None:
    """The flags tidb-operator's start script passes to /pd-server, read as PD reads them."""
    p.add_argument("--name", default="")
    p.add_argument("--data-dir", default="")
    p.add_argument("--client-urls", default="")
    p.add_argument("--advertise-client-urls", default="")
    p.add_argument("--peer-urls", default="")
    p.add_argument("--advertise-peer-urls", default="")
    p.add_argument("--config", default="")
    p.add_argument("--initial-cluster", default="")
    p.add_argument("--join", default="")


def read_config(path: str) -> dict[str, Any]:
    """PD's TOML file (tidb-operator renders spec.pd.config into /etc/pd/pd.toml); {} if absent."""
    if not path or not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        return tomllib.load(f)


def model_from(a: argparse.Namespace) -> PDModel:
    """The model for the cluster PD's own flags name (its advertised URL is <pod>.<cluster>-pd-peer.<ns>.svc)."""
    cluster, namespace, host = a.cluster, a.namespace, ""
    if a.advertise_client_urls:
        host = urlsplit(a.advertise_client_urls.split(",")[0]).hostname or ""
        labels = host.split(".")
        if len(labels) >= 3 and labels[1].endswith("-pd-peer"):
            cluster, namespace = labels[1].removesuffix("-pd-peer"), labels[2]
    cfg = read_config(a.config)
    m = PDModel(cluster=cluster, namespace=namespace, timing=Timing(scale=a.time_scale),
                member_name=a.name, member_host=host)
    down = (cfg.get("schedule") or {}).get("max-store-down-time")
    if down:
        m.max_store_down = parse_go_duration(str(down))
    m.max_replicas = int((cfg.get("replication") or {}).get("max-replicas", 3))
    return m


def parser() -> argparse.ArgumentParser:
    """The stand-in's own flags and PD's (``pd_flags``)."""
    p = argparse.ArgumentParser(prog="pd-standin", description="PD STAND-IN for the kind tier")
    p.add_argument("--cluster", default=os.environ.get("CLUSTER_NAME", "basic"))
    p.add_argument("--namespace", default=os.environ.get("NAMESPACE", "tidb-cluster"))
    p.add_argument("--port", type=int, default=2379)
    p.add_argument("--time-scale", type=float, default=float(os.environ.get("TIME_SCALE", "1")))
    p.add_argument("--etcd", default="", help="the etcd binary (default: etcd on PATH)")
    p.add_argument("--etcd-port", type=int, default=0, help="its loopback client port (default: --port + 10000)")
    pd_flags(p)
    return p


def main(argv: list[str] | None = None) -> int:
    a, unknown = parser().parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pd-standin %(message)s")
    if unknown:
        log.info("PD flags this stand-in does not use: %s", " ".join(unknown))
    if a.data_dir:
        # PD's start script asks discovery for its first arguments only while member/wal is absent.
        os.makedirs(os.path.join(a.data_dir, "member", "wal"), exist_ok=True)
    a.etcd_port = a.etcd_port or a.port + 10000
    s = Standin(model_from(a), fresh=lambda: model_from(a))
    member = member_json(s.model)
    stop = threading.Event()
    s.etcd = member_etcd(a, (a.advertise_client_urls or f"http://127.0.0.1:{a.port}").split(",")[0])
    etcd = None
    if s.etcd is not None:  # as PD: joined (a member added through a running one) before it serves anything
        etcd = s.etcd.start(a.initial_cluster, a.join)
        s.leading = False
        s.election = Election(s.etcd, s.lead, ttl=LEASE_TTL * a.time_scale)
        threading.Thread(target=s.election.run, args=(stop,), daemon=True).start()
    server = PDPort(("0.0.0.0", a.port), handler_for(s))
    server.etcd_port = a.etcd_port if etcd is not None else 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=s.tick, args=(stop, min(0.5, s.model.timing.s("heartbeat") / 10)), daemon=True).start()
    seen: set[str] = set()

    def on_etcd(peer: Any) -> None:  # the first connection of each client host, so TiKV's events are not crowded out
        if peer[0] not in seen:
            seen.add(peer[0])
            s.note(member["name"], "etcd-connection", f"first from {peer[0]}", time.time())

    server.on_etcd = on_etcd
    start = (f"--initial-cluster={a.initial_cluster}" if a.initial_cluster else f"--join={a.join}" if a.join
             else "no discovery arguments")
    log.info("PD STAND-IN (not PD) %s for %s/%s on :%d, time scale %g, max-store-down-time %s, %s: stores come "
             "only from TiKV heartbeats", member["name"], s.model.namespace, s.model.cluster, a.port,
             a.time_scale, config_json(s.model)["schedule"]["max-store-down-time"], start)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: done.set())
    try:
        done.wait()
    finally:
        stop.set()
        if s.election is not None and s.election.leader is s.election.me:
            time.sleep(0.5)  # the leader loop revokes its lease as it stops
        server.shutdown()
        server.server_close()
        if etcd is not None:
            etcd.terminate()
            etcd.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

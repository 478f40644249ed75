"""PD STAND-IN: PD's HTTP API on :2379, fed only by the TiKV stand-ins' heartbeats.

    python -m chaosdemo_local.standins.pd_server --cluster basic --namespace tidb-cluster
    /pd-server --name=basic-pd-0 --advertise-client-urls=http://basic-pd-0.basic-pd-peer.tidb-cluster.svc:2379 ...

The second form is how tidb-operator's start script runs it: the flags are
PD's own, the cluster and namespace are read from the advertised URL and
``schedule.max-store-down-time`` from ``--config``.

Like PD, it serves an etcd on the same port (a real one, see ``PDPort``).
Besides PD's own routes it takes ``POST /chaosdemo-standin/heartbeat`` and
``/goodbye`` (what a TiKV stand-in sends instead of PD's gRPC) and tells what
it heard at ``GET /chaosdemo-standin/events``, so tests can see what a real
kubelet did to a TiKV process (a SIGTERM, a restart) from PD's side.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import tomllib
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from chaosdemo_local.simulation.pd_api import answer, config_json, member_json
from chaosdemo_local.simulation.pd_model import PDModel, Timing, parse_go_duration, rfc3339

log = logging.getLogger("pd-standin")


class Standin:
    def __init__(self, model: PDModel) -> None:
        self.model, self.lock = model, threading.Lock()
        self.events: deque[dict[str, Any]] = deque(maxlen=500)

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

    def tick(self, stop: threading.Event, period: float) -> None:
        while not stop.wait(period):
            now = time.time()
            with self.lock:
                self.model.infer_silence(now)
                self.model.advance(now)


def handler_for(s: Standin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time()
            try:
                if method == "POST" and self.path == "/chaosdemo-standin/heartbeat":
                    return self._answer(200, s.heartbeat(json.loads(body), now))
                if method == "POST" and self.path == "/chaosdemo-standin/goodbye":
                    return self._answer(200, s.goodbye(json.loads(body), now))
                if method == "GET" and self.path == "/chaosdemo-standin/events":
                    with s.lock:
                        return self._answer(200, list(s.events))
                with s.lock:
                    status, payload = answer(s.model, method, self.path, body, now)
                self._answer(status, payload)
            except (KeyError, ValueError) as e:
                self._answer(400, f"bad request: {e}")

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, fmt: str, *args: Any) -> None:
            return

    return Handler


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


def start_etcd(data_dir: str, port: int) -> subprocess.Popen[bytes] | None:
    """A real etcd on loopback for PD's embedded one, if the image carries it (``etcd`` on PATH)."""
    binary = shutil.which("etcd")
    if not binary:
        log.info("no etcd on PATH: PD's etcd (gRPC on :2379) is not served")
        return None
    peer = f"http://127.0.0.1:{port + 1}"
    return subprocess.Popen([
        binary, "--name", "pd-standin-etcd", "--data-dir", os.path.join(data_dir or "/tmp", "etcd-standin"),
        "--listen-client-urls", f"http://127.0.0.1:{port}", "--advertise-client-urls", f"http://127.0.0.1:{port}",
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"pd-standin-etcd={peer}", "--log-level", "warn"])


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
    s = Standin(model_from(a))
    stop = threading.Event()
    threading.Thread(target=s.tick, args=(stop, min(0.5, s.model.timing.s("heartbeat") / 10)), daemon=True).start()
    etcd = start_etcd(a.data_dir, a.port + 10000)
    server = PDPort(("0.0.0.0", a.port), handler_for(s))
    server.etcd_port = a.port + 10000 if etcd else 0
    member, seen = member_json(s.model)["name"], set()

    def on_etcd(peer: Any) -> None:  # the first connection of each client host, so TiKV's events are not crowded out
        if peer[0] not in seen:
            seen.add(peer[0])
            s.note(member, "etcd-connection", f"first from {peer[0]}", time.time())

    server.on_etcd = on_etcd
    start = (f"--initial-cluster={a.initial_cluster}" if a.initial_cluster else f"--join={a.join}" if a.join
             else "no discovery arguments")
    log.info("PD STAND-IN (not PD) %s for %s/%s on :%d, time scale %g, max-store-down-time %s, %s: stores come "
             "only from TiKV heartbeats", member_json(s.model)["name"], s.model.namespace, s.model.cluster, a.port,
             a.time_scale, config_json(s.model)["schedule"]["max-store-down-time"], start)
    signal.signal(signal.SIGTERM, lambda signum, frame: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    finally:
        stop.set()
        if etcd is not None:
            etcd.terminate()
            etcd.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

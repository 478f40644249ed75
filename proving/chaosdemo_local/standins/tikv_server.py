"""TiKV STAND-IN: listens on TiKV's ports and heartbeats its store to the PD stand-in.

    python -m chaosdemo_local.standins.tikv_server --pd http://basic-pd:2379 \
        --address $(POD).basic-tikv-peer.tidb-cluster.svc:20160
    /tikv-server --pd=http://basic-pd:2379 --advertise-addr=basic-tikv-0.basic-tikv-peer.tidb-cluster.svc:20160 ...

The second form is how tidb-operator's start script runs it, with TiKV's own flags.

A new process is a new TiKV: it takes a start-up delay before its first
heartbeat, as TiKV does. On SIGTERM it stops heartbeating, tells PD it is
going, and exits after a short shutdown (a real TiKV transfers its leaders
away first); SIGKILL leaves PD to notice the silence.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chaosdemo_local.standins.raft_groups import start_groups

log = logging.getLogger("tikv-standin")


def post(url: str, doc: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        out: dict[str, Any] = json.loads(r.read() or b"{}")
        return out


def listen(port: int, stop: threading.Event) -> None:
    """TiKV's server port: accept and close (readiness probes connect to it)."""
    srv = socket.create_server(("0.0.0.0", port), reuse_port=True)
    srv.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = srv.accept()
            conn.close()
        except TimeoutError:
            continue


def status_server(port: int, info: dict[str, Any], only: str = "") -> ThreadingHTTPServer:
    """A status port answering ``info`` as JSON: on every path, or ``only`` on that one (404 elsewhere)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if only and self.path.split("?")[0] != only:
                self.send_error(404)
                return
            data = json.dumps(info).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            return

    srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tikv-standin", description="TiKV STAND-IN for the kind tier")
    p.add_argument("--pd", default=os.environ.get("PD_URL", "http://basic-pd:2379"))
    p.add_argument("--address", "--advertise-addr", default=os.environ.get("ADVERTISE_ADDR", ""))
    p.add_argument("--pod", default=os.environ.get("POD_NAME", ""))
    p.add_argument("--time-scale", type=float, default=float(os.environ.get("TIME_SCALE", "1")))
    p.add_argument("--startup-seconds", type=float, default=5.0)
    p.add_argument("--shutdown-seconds", type=float, default=3.0)
    p.add_argument("--etcd", default=os.environ.get("STANDIN_ETCD", "/usr/bin/etcd"))
    p.add_argument("--stores", type=int, default=int(os.environ.get("STANDIN_STORES", "3")))
    # The rest of the flags tidb-operator's start script passes to /tikv-server: read, and unused.
    for flag in ("--addr", "--status-addr", "--advertise-status-addr", "--data-dir", "--capacity", "--config",
                 "--labels"):  # --data-dir: where the raft groups keep their data
        p.add_argument(flag, default="")
    a, unknown = p.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tikv-standin %(message)s")
    if unknown:
        log.info("TiKV flags this stand-in does not use: %s", " ".join(unknown))
    return a


def heartbeat_until(going: threading.Event, stop: threading.Event, pd: str, store: dict[str, str],
                    interval: float, tasks: queue.Queue[float] | None = None) -> None:
    """Heartbeat the store to PD until ``going``, then say goodbye.

    As TiKV's store heartbeat tick (pd-store-heartbeat-tick-interval): the tick hands the heartbeat to the PD
    worker and is re-armed once handled (tikv components/raftstore/src/store/fsm/store.rs), so the ticks drift
    by their handling, never an exact grid, and a slow PD does not hold them up; PD stamps each heartbeat on its
    own clock when it arrives. A process stopped through many ticks ticks once when it runs again.
    ``tasks`` is the PD worker's queue (given by a test to see the ticks wait in it).
    """
    tasks = queue.Queue() if tasks is None else tasks
    told, sending = {"interval": interval}, threading.Lock()

    def pd_worker() -> None:
        """TiKV's PD worker: sends each heartbeat the tick asked for, in order, however long PD takes."""
        while not stop.is_set():
            try:
                tasks.get(timeout=0.5)
            except queue.Empty:
                continue
            with sending:  # never a heartbeat after the goodbye
                if going.is_set():
                    continue
                try:
                    told["interval"] = float(post(f"{pd}/chaosdemo-standin/heartbeat", store)
                                             .get("heartbeat_interval_seconds", told["interval"]))
                except (OSError, urllib.error.URLError, ValueError) as e:
                    log.warning("heartbeat to PD failed: %s", e)

    threading.Thread(target=pd_worker, daemon=True).start()
    while not going.is_set():
        tasks.put(time.monotonic())
        going.wait(told["interval"])
    with sending:
        try:
            post(f"{pd}/chaosdemo-standin/goodbye", {"pod": store["pod"], "process": store["process"],
                                                      "reason": "SIGTERM"})
        except (OSError, urllib.error.URLError, ValueError) as e:
            log.warning("goodbye to PD failed: %s", e)


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    # The store is its pod's: the first label of the advertised address, as tidb-operator maps them.
    a.pod = a.pod or (a.address.split(".")[0] if a.address else socket.gethostname())
    process = f"{socket.gethostname()}/{os.getpid()}/{time.time():.3f}"
    address = a.address or f"{a.pod}:20160"
    stop, going = threading.Event(), threading.Event()
    info = {"standin": "TiKV STAND-IN (not TiKV)", "pod": a.pod, "address": address, "process": process}

    def on_term(signum: int, frame: Any) -> None:
        log.info("received SIGTERM: stopping heartbeats, shutting down in %.1fs", a.shutdown_seconds)
        going.set()

    signal.signal(signal.SIGTERM, on_term)
    if os.path.exists(a.etcd) and a.address:  # the SQL canary's data path (kind): real raft groups
        start_groups(a.address, a.stores, a.data_dir, stop, etcd=a.etcd, time_scale=a.time_scale)
    threading.Thread(target=listen, args=(20160, stop), daemon=True).start()
    status_server(20180, info)
    log.info("TiKV STAND-IN (not TiKV) %s at %s, PD %s", process, address, a.pd)
    going.wait(a.startup_seconds * a.time_scale)
    heartbeat_until(going, stop, a.pd, {"pod": a.pod, "address": address, "process": process},
                    10.0 * a.time_scale)
    time.sleep(a.shutdown_seconds)
    stop.set()
    log.info("shut down after SIGTERM")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

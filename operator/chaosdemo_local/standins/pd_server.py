"""PD STAND-IN: PD's HTTP API on :2379, fed only by the TiKV stand-ins' heartbeats.

    python -m chaosdemo_local.standins.pd_server --cluster basic --namespace tidb-cluster

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
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chaosdemo_local.pd_model import PDModel, Timing, rfc3339

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
                    status, payload = s.model.api(method, self.path, body, now)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pd-standin", description="PD STAND-IN for the kind tier")
    p.add_argument("--cluster", default=os.environ.get("CLUSTER_NAME", "basic"))
    p.add_argument("--namespace", default=os.environ.get("NAMESPACE", "tidb-cluster"))
    p.add_argument("--port", type=int, default=2379)
    p.add_argument("--time-scale", type=float, default=float(os.environ.get("TIME_SCALE", "1")))
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pd-standin %(message)s")
    s = Standin(PDModel(cluster=a.cluster, namespace=a.namespace, timing=Timing(scale=a.time_scale)))
    stop = threading.Event()
    threading.Thread(target=s.tick, args=(stop, min(0.5, s.model.timing.s("heartbeat") / 10)), daemon=True).start()
    server = ThreadingHTTPServer(("0.0.0.0", a.port), handler_for(s))
    log.info("PD STAND-IN (not PD) for %s/%s on :%d, time scale %g: stores come only from TiKV heartbeats",
             a.namespace, a.cluster, a.port, a.time_scale)
    try:
        server.serve_forever()
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

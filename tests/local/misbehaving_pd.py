"""A PD that misbehaves on cue: a real HTTP server in front of the SIMULATED PD.

In mode ``ok`` it passes every request through to the simulated PD; in the
other modes it answers the way a sick PD (or whatever sits at its address)
does. The operator is pointed at it with ``CHAOSDEMO_PD_URL_TEMPLATE``.

Given several upstreams (cluster name -> simulated PD), it plays the cluster's
DNS too: ``/c/<cluster>/pd/api/v1/...`` goes to that cluster's PD, so the
template ``<url>/c/{name}`` reaches each cluster's own.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["ok", "hang", "5xx", "garbage", "wrong-shape", "slow", "slow-health", "reloaded", "skewed"]
SKEW_SECONDS = 30.0  # mode "skewed": PD's node clock this far behind the operator's
MODES: tuple[Mode, ...] = ("hang", "5xx", "garbage", "wrong-shape", "slow")
SLOW_SECONDS = 4.0  # over the operator's default PD timeout (3 s)


def reload_view(body: bytes, saved_ago: float = 280.0) -> bytes:
    """The stores as PD shows them right after it restarted or became leader: it reloaded their metadata
    from its storage, saved up to 5 minutes earlier (tikv/pd pkg/core/store.go storePersistInterval), so
    every heartbeat is that old and every store Disconnected until PD hears it again."""
    doc = json.loads(body)
    saved = time.time() - saved_ago
    for entry in doc.get("stores") or []:
        entry["store"]["last_heartbeat"] = int(saved * 1e9)
        entry["store"]["state_name"] = "Disconnected"
        entry["status"]["last_heartbeat_ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(saved))
    return json.dumps(doc).encode()


def shifted(body: bytes, seconds: float) -> bytes:
    """The stores as a PD whose clock is ``seconds`` off ours stamps their heartbeats."""
    doc = json.loads(body)
    for entry in doc.get("stores") or []:
        entry["store"]["last_heartbeat"] = int(entry["store"]["last_heartbeat"] + seconds * 1e9)
    return json.dumps(doc).encode()


class MisbehavingPD:
    def __init__(self, upstream: str | dict[str, str], mode: Mode = "ok") -> None:
        self.upstreams = upstream if isinstance(upstream, dict) else {"": upstream}
        self.mode = mode
        self.requests = 0
        # mode "reloaded": PD's view of the stores is its reload for this long from the first /stores asked
        self.reload_for, self.reloaded_until, self.reloaded_views = 0.0, 0.0, 0
        self._closing = threading.Event()
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                front.requests += 1
                mode = front.mode
                if mode == "hang":
                    # No answer while the mode lasts; then the connection is dropped unanswered.
                    while front.mode == "hang" and not front._closing.wait(0.1):
                        pass
                    return
                if mode == "5xx":
                    self._send(503, b'{"error": "PD is not serving (misbehaving on purpose)"}')
                    return
                if mode == "garbage":
                    self._send(200, b"<html>\x00\xff not PD at all</html>", "text/html")
                    return
                if mode == "wrong-shape":
                    self._send(200, b'{"stores": "all fine", "count": "many"}' if not self.path.endswith("health")
                               else b'{"healthy": "yes"}')
                    return
                if mode == "slow" or (mode == "slow-health" and self.path.endswith("/health")):
                    # slow-health: real PD's /health asks each member in turn with 3 s each
                    # (tikv/pd server/cluster/cluster.go CheckHealth), so one dead member of three holds it up
                    time.sleep(SLOW_SECONDS)
                try:
                    with urllib.request.urlopen(front.route(self.path), timeout=10) as resp:
                        body = resp.read()
                        if mode == "reloaded" and self.path.endswith("/stores") and front.still_reloading():
                            body = reload_view(body)
                        if mode == "skewed" and self.path.endswith("/stores"):
                            body = shifted(body, -SKEW_SECONDS)
                        self._send(resp.status, body)
                except urllib.error.HTTPError as e:
                    with e:
                        self._send(e.code, e.read())

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the operator gave up waiting: that is the point of some modes

            def log_message(self, *args: object) -> None:
                return None

            def date_time_string(self, timestamp: float | None = None) -> str:
                """The Date header on PD's clock: behind ours in mode "skewed" (Go's net/http sets it so)."""
                shift = -SKEW_SECONDS if front.mode == "skewed" else 0.0
                return super().date_time_string((timestamp or time.time()) + shift)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reload(self, seconds: float) -> None:
        """From the next /stores on, PD's view is its reload for ``seconds`` (then PD has heard every store)."""
        self.reload_for, self.reloaded_until, self.reloaded_views = seconds, 0.0, 0
        self.mode = "reloaded"

    def still_reloading(self) -> bool:
        now = time.time()
        if not self.reloaded_until:
            self.reloaded_until = now + self.reload_for
        if now < self.reloaded_until:
            self.reloaded_views += 1
            return True
        return False

    def route(self, path: str) -> str:
        if "" in self.upstreams:
            return self.upstreams[""].rstrip("/") + path
        _, _, cluster, rest = path.split("/", 3)
        return self.upstreams[cluster].rstrip("/") + "/" + rest

    def __enter__(self) -> MisbehavingPD:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

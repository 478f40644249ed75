"""`kubectl chaosdemo watch` ends its API watch before it exits.

Against a real HTTP server that speaks the API server's watch protocol and
holds the stream open, as a real API server does until its timeout: the
plugin's exit must not leave a thread blocked in that read (at interpreter
shutdown such a thread aborted the process, exit -6, on a busy CI machine).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client
from rich.console import Console

from chaosdemo.plugin.cli import follow

PATH = "/apis/chaosdemo.dev/v1alpha1/namespaces/ns/chaosdemos"


def demo(phase: str, rv: str) -> dict[str, Any]:
    return {"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
            "metadata": {"name": "d", "namespace": "ns", "resourceVersion": rv,
                         "creationTimestamp": "2026-11-25T08:00:00Z"},
            "spec": {"cluster": {"name": "basic"}, "fault": {"action": "pod-delete"}},
            "status": {"phase": phase, "message": "recovered in 1s" if phase == "Succeeded" else ""}}


class ApiServer:
    """GET of the demo answers Detecting; its watch sends ``events`` and then holds the stream open."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events, self.release, self.watches = events, threading.Event(), 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                if "watch=" not in self.path:
                    body = json.dumps(demo("Detecting", "1")).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                outer.watches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for ev in outer.events:
                    line = json.dumps(ev).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                outer.release.wait(60)  # the stream stays open, as a real watch's does

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def api(self) -> client.ApiClient:
        cfg = client.Configuration()
        cfg.host = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return client.ApiClient(cfg)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_with(request: pytest.FixtureRequest) -> Iterator[ApiServer]:
    srv = ApiServer(request.param)
    yield srv
    srv.close()


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "chaosdemo-watch"]


@pytest.mark.parametrize("server_with", [[{"type": "MODIFIED", "object": demo("Succeeded", "2")}]],
                         indirect=True)
def test_a_demo_followed_to_its_end_leaves_no_watch_behind(server_with: ApiServer) -> None:
    out = io.StringIO()
    api = server_with.api()
    code = follow(api, "ns", "d", Console(file=out, width=120))
    api.close()
    assert code == 0, out.getvalue()
    assert server_with.watches == 1 and "Succeeded" in out.getvalue()
    # The server still holds the stream open: only the plugin's own close ended the thread.
    assert not server_with.release.is_set() and watch_threads() == []


@pytest.mark.parametrize("server_with", [[]], indirect=True)
def test_a_watch_given_up_on_its_timeout_leaves_no_watch_behind(server_with: ApiServer) -> None:
    out = io.StringIO()
    api = server_with.api()
    code = follow(api, "ns", "d", Console(file=out, width=120), timeout=0.5)
    api.close()
    assert code == 5 and "--timeout 0.5s passed" in out.getvalue(), out.getvalue()
    assert watch_threads() == []

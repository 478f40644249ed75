"""The local API server, asked as its admin over HTTPS, without a kubectl process: one request, its JSON."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from chaosdemo_local.cluster.pki import ADMIN_TOKEN
from chaosdemo_local.cluster.supervisor import ControlPlaneError

__all__ = ["request"]


def _open(server: str, ca: Path, path: str, method: str, body: object | None,
          timeout: float = 5) -> http.client.HTTPResponse:
    ctx = ssl.create_default_context(cafile=str(ca))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server + path, data=data, method=method, headers={
        "Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
    return urllib.request.urlopen(req, context=ctx, timeout=timeout)  # type: ignore[no-any-return]


def request(server: str, ca: Path, path: str, method: str = "GET", body: object | None = None,
            retry_for: float = 30) -> dict[str, Any]:
    """One request to the API server: its JSON answer, or ``{"raw": text}``.

    A 429 (the API server's "try again in a second", as for a new CRD's storage) is retried after the
    delay it asks for, as kubectl does, for up to ``retry_for`` seconds; any other error is raised.
    """
    deadline = time.monotonic() + retry_for
    while True:
        try:
            with _open(server, ca, path, method, body) as resp:
                text = resp.read().decode()
            return json.loads(text) if text.startswith("{") else {"raw": text}  # type: ignore[no-any-return,unused-ignore]
        except urllib.error.HTTPError as e:
            with e:  # an HTTPError holds the connection open until closed
                detail = e.read()[:300]
                wait = float(e.headers.get("Retry-After") or 1)
            if e.code != 429 or time.monotonic() + wait > deadline:
                raise ControlPlaneError(f"{method} {path}: HTTP {e.code} {detail!r}") from None
            time.sleep(wait)

"""Whether the local tier's TidbCluster is as a demo's preflight needs it, by Kubernetes, PD and the simulation.

PD's answers alone are not enough right after a fault: a store whose pod or node came back still shows Up,
with nothing pending, until its new TiKV process first heartbeats and starts to catch up (CI saw a preflight
refuse 32 pending regions right after such a look). So every Ready pod must also be the one the simulation's
store serves (same uid), and every store settled, by the simulation's own word.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from chaosdemo_local.cluster.control_plane import LocalCluster

__all__ = ["pd_call", "tier_health"]


def pd_call(pd_url: str, path: str, method: str = "GET", body: Any = None) -> Any:
    """One request to the SIMULATED PD: its JSON answer; an HTTP error is an OSError."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(pd_url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        with e:
            raise OSError(f"PD simulator {method} {path}: HTTP {e.code}") from None


def tier_health(cluster: LocalCluster, pd_url: str, ns: str, name: str) -> tuple[bool, str]:
    """(healthy, what was seen): 3 TiKV pods Ready and served, 3 stores Up and settled, no pending region,
    the TidbCluster Ready."""
    selector = urllib.parse.quote(f"app.kubernetes.io/component=tikv,app.kubernetes.io/instance={name}")
    pods = cluster.api(f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}")["items"]
    ready = [p for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))]
    try:
        stores = pd_call(pd_url, "/pd/api/v1/stores")["stores"]
        regions = pd_call(pd_url, "/pd/api/v1/regions")["count"]
        pending = pd_call(pd_url, "/pd/api/v1/regions/check/pending-peer")["count"]
        sim = pd_call(pd_url, "/_sim/state")["stores"]
    except OSError as e:
        return False, f"PD simulator not answering: {e}"
    up = [s for s in stores if s["store"]["state_name"] == "Up"]
    unsettled = sorted(f"{pod} {s['why']}" for pod, s in sim.items() if s["why"])
    unseen = sorted(p["metadata"]["name"] for p in ready
                    if (sim.get(p["metadata"]["name"]) or {}).get("uid") != p["metadata"]["uid"])
    tc = cluster.api(f"/apis/pingcap.com/v1alpha1/namespaces/{ns}/tidbclusters/{name}")
    tc_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (tc.get("status") or {}).get("conditions", []))
    ok = len(ready) == 3 and len(up) == 3 and regions > 0 and pending == 0 and tc_ready and not (unsettled or unseen)
    return ok, (f"{len(ready)}/3 TiKV pods Ready, {len(up)}/{len(stores)} stores Up, "
                f"{regions} regions, {pending} pending, TidbCluster Ready={tc_ready}"
                + (f", stores not settled: {', '.join(unsettled)}" if unsettled else "")
                + (f", pods the simulation has not seen yet: {', '.join(unseen)}" if unseen else ""))

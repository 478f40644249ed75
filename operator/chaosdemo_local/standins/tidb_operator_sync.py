"""tidb-operator STAND-IN: its status sync of one TidbCluster, from PD's answers.

    python -m chaosdemo_local.standins.tidb_operator_sync --cluster basic --namespace tidb-cluster

Runs in cluster under its own ServiceAccount. Every few seconds it reads PD's
``GET /pd/api/v1/stores`` and writes ``status.tikv.stores`` and the Ready
condition, as tidb-operator's controller does. The real tidb-operator
replaces this on the kind tier once it runs here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from chaosdemo_local.pd_model import tc_status

log = logging.getLogger("tidb-operator-standin")
SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def api(method: str, path: str, body: dict[str, Any] | None = None,
        content_type: str = "application/merge-patch+json") -> dict[str, Any]:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    with open(f"{SA}/token") as f:
        token = f.read().strip()
    req = urllib.request.Request(f"https://{host}:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    ctx = ssl.create_default_context(cafile=f"{SA}/ca.crt")
    with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
        out: dict[str, Any] = json.loads(r.read() or b"{}")
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tidb-operator-standin")
    p.add_argument("--cluster", default="basic")
    p.add_argument("--namespace", default="tidb-cluster")
    p.add_argument("--period", type=float, default=2.0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tidb-operator-standin %(message)s")
    tc_path = f"/apis/pingcap.com/v1alpha1/namespaces/{a.namespace}/tidbclusters/{a.cluster}"
    pd_url = f"http://{a.cluster}-pd.{a.namespace}.svc:2379/pd/api/v1/stores"
    log.info("tidb-operator STAND-IN (not tidb-operator): status sync of %s/%s from %s", a.namespace, a.cluster,
             pd_url)
    while True:
        try:
            with urllib.request.urlopen(pd_url, timeout=3) as r:
                stores = json.loads(r.read())
            prev = api("GET", tc_path).get("status") or {}
            api("PATCH", f"{tc_path}/status", {"status": tc_status(stores, prev, time.time())})
        except (OSError, urllib.error.URLError, ValueError, KeyError) as e:
            log.warning("status sync failed: %s", e)
        time.sleep(a.period)


if __name__ == "__main__":
    raise SystemExit(main())

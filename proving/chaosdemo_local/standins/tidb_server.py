"""TiDB STAND-IN: TiDB's ports, so tidb-operator finds its TiDB member healthy.

    /tidb-server --store=tikv --advertise-address=basic-tidb-0.basic-tidb-peer.tidb-cluster.svc \
        --host=0.0.0.0 --path=basic-pd:2379 --config=/etc/tidb/tidb.toml

Port 4000 speaks the MySQL protocol for exactly the SQL canary's statements (``tidb_protocol.py``), its
rows kept in the TiKV STAND-INs' etcd raft groups (``etcd_backend.py``): a fault's cost to clients is what
real elections cost. The status port 10080 answers ``GET /status`` as TiDB does, which is what
tidb-operator reads for a TiDB member's health.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import threading

from chaosdemo_local.standins.tikv_server import status_server

log = logging.getLogger("tidb-standin")
VERSION = "8.0.11-TiDB-v8.5.7-STAND-IN"


def serve_sql(advertise: str, pd: str, stop: threading.Event) -> None:
    """The MySQL port, over the raft groups of this TidbCluster's TiKV STAND-INs, until ``stop``."""
    from chaosdemo_local.simulation.tidb_protocol import SqlServer
    from chaosdemo_local.standins.etcd_backend import EtcdBackend

    # <cluster>-tidb-<n>.<cluster>-tidb-peer.<namespace>.svc: the cluster's name and namespace
    pod, _, rest = advertise.partition(".")
    cluster, namespace = pod.rpartition("-tidb-")[0], [*rest.split("."), ""][1]
    pd_url = pd if pd.startswith("http") else f"http://{pd}"

    async def run() -> None:
        backend = EtcdBackend(cluster, namespace, pd_url)
        server = SqlServer(backend)
        await server.start("0.0.0.0", 4000)
        log.info("MySQL protocol on 4000 (the SQL canary's statements only), data in %s's raft groups", cluster)
        await asyncio.to_thread(stop.wait)
        await server.close()
        backend.close()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tidb-standin", description="TiDB STAND-IN for the kind tier")
    for flag in ("--store", "--advertise-address", "--host", "--path", "--config", "--log-slow-query",
                 "--enable-binlog"):
        p.add_argument(flag, default="")
    a, unknown = p.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tidb-standin %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    threading.Thread(target=serve_sql, args=(a.advertise_address, a.path, stop), daemon=True).start()
    status_server(10080, {"connections": 0, "version": VERSION, "git_hash": "stand-in", "pd": a.path}, only="/status")
    log.info("TiDB STAND-IN (not TiDB) at %s, PD %s; not used: %s", a.advertise_address, a.path,
             " ".join(unknown) or "-")
    stop.wait()
    log.info("shut down after SIGTERM")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

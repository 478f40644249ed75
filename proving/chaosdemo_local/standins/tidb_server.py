"""TiDB STAND-IN: TiDB's ports, so tidb-operator finds its TiDB member healthy.

    /tidb-server --store=tikv --advertise-address=basic-tidb-0.basic-tidb-peer.tidb-cluster.svc \
        --host=0.0.0.0 --path=basic-pd:2379 --config=/etc/tidb/tidb.toml

No demo exercises SQL, so this does not speak MySQL's protocol: port 4000
accepts and closes (TiDB's readiness probe is a TCP connect), and the status
port 10080 answers ``GET /status`` as TiDB does, which is what tidb-operator
reads for a TiDB member's health.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from chaosdemo_local.standins.tikv_server import listen, status_server

log = logging.getLogger("tidb-standin")
VERSION = "8.0.11-TiDB-v8.5.7-STAND-IN"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tidb-standin", description="TiDB STAND-IN for the kind tier")
    for flag in ("--store", "--advertise-address", "--host", "--path", "--config", "--log-slow-query",
                 "--enable-binlog"):
        p.add_argument(flag, default="")
    a, unknown = p.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tidb-standin %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    threading.Thread(target=listen, args=(4000, stop), daemon=True).start()
    status_server(10080, {"connections": 0, "version": VERSION, "git_hash": "stand-in", "pd": a.path}, only="/status")
    log.info("TiDB STAND-IN (not TiDB) at %s, PD %s; not used: %s", a.advertise_address, a.path,
             " ".join(unknown) or "-")
    stop.wait()
    log.info("shut down after SIGTERM")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``chaosdemo-local bench-canary`` (``make bench-canary``, and part of ``make bench``): what the SQL canary
costs the operator's process, measured.

The operator's own runner (``run/canary.py``) runs N canaries at their default rate in this process for a
while, against the local SIMULATED TiDB in a process of its own (so its work is not counted); this
process's CPU time over the wall time is the canary's share of one core, and its resident memory before
and after is what they hold. The bounds it checks are issue 31's: at most 5% of one core per demo at
the default rate, and 30 canaries in a process under 200 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chaosdemo.api.models import CanarySpec
from chaosdemo.clients.sql import SqlPool, SqlTarget
from chaosdemo.core.canary_plan import Plan, database_for
from chaosdemo.run.canary import Canary, pool_size

__all__ = ["main", "measure"]

SERVER = """
import asyncio
from chaosdemo_local.simulation.tidb_sql import SimulatedTiDB, TiDBModel
async def main():
    server = SimulatedTiDB(TiDBModel(lambda: {"1": "serving", "4": "serving", "5": "serving"}))
    print(await server.start(), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""
CPU_BOUND, MEMORY_BOUND = 5.0, 200.0  # % of one core per canary; MiB for 30 canaries in one process


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(canaries: int, seconds: float) -> dict[str, Any]:
    """N canaries at the default rate for ``seconds`` against a SIMULATED TiDB of its own process."""
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        return asyncio.run(_measure(int(server.stdout.readline()), canaries, seconds))
    finally:
        server.kill()
        server.wait()


async def _measure(port: int, canaries: int, seconds: float) -> dict[str, Any]:
    """Statements, CPU share and memory of this process while N canaries run."""
    spec = CanarySpec(enabled=True)
    runs = [Canary(SqlPool(SqlTarget("127.0.0.1", port, "root", ""), size=pool_size(spec),
                           timeout=spec.statement_timeout_seconds),
                   spec, Plan(database_for(f"bench{i}"), spec.accounts), f"bench{i}") for i in range(canaries)]
    for c in runs:
        await c.prepare(3)
    rss0, cpu0, t0 = _rss_mib(), time.process_time(), time.monotonic()
    for c in runs:
        c.start(time.time())
    await asyncio.sleep(seconds)
    cpu, wall, rss = time.process_time() - cpu0, time.monotonic() - t0, _rss_mib()
    ok = sum(s.ok for c in runs for s in c.tally.seconds.values())
    for c in runs:
        await c.stop()
        await c.drop()
    share = 100 * cpu / wall
    return {"canaries": canaries, "seconds": round(wall, 1), "rate": spec.rate_per_second, "statementsOk": ok,
            "cpuPercentOfOneCore": round(share, 2), "cpuPercentPerCanary": round(share / canaries, 2),
            "rssMiB": round(rss, 1), "rssGrowthMiB": round(rss - rss0, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="chaosdemo-local bench-canary", description=__doc__)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--out", default="bench/canary-cost.json")
    a = p.parse_args(argv)
    print(f"[bench-canary] 1 canary, then 30, each for {a.seconds:.0f}s at the default rate (about "
          f"{2 * a.seconds / 60:.0f} min)", flush=True)
    one, fleet = measure(1, a.seconds), measure(30, a.seconds)
    results = {"measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "one": one, "thirty": fleet,
               "bounds": {"cpuPercentPerCanary": CPU_BOUND, "rssMiBFor30": MEMORY_BOUND}}
    Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    for r in (one, fleet):
        print(f"[bench-canary] {r['canaries']} canaries: {r['statementsOk']} statements in {r['seconds']}s, "
              f"{r['cpuPercentOfOneCore']}% of one core ({r['cpuPercentPerCanary']}% each), "
              f"RSS {r['rssMiB']} MiB (+{r['rssGrowthMiB']} MiB)")
    met = one["cpuPercentPerCanary"] <= CPU_BOUND and fleet["rssMiB"] <= MEMORY_BOUND
    print(f"[bench-canary] bounds ({CPU_BOUND}% of a core per canary, {MEMORY_BOUND:.0f} MiB for 30): "
          f"{'met' if met else 'NOT met'}; written to {a.out}")
    return 0 if met else 1

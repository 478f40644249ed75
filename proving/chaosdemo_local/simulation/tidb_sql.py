"""SIMULATED TiDB for the local tier: the SQL canary's statements over the real MySQL protocol, its rows in
memory, their availability played from the SIMULATED PD's stores.

Not TiDB, and not a data path: the local tier's stores are SIMULATED (kwok runs no TiKV). A statement on
rows led by a store that is not serving waits (a stopped store: until the client gives up, at most 60 s)
or fails with TiDB's ``9005 Region is unavailable`` (a store that is gone), until an election moves the
lead to a serving store ``election_seconds`` (TiKV's 10 s) after it stopped serving. That is this
module's model, not an effect of real consensus: it keeps the operator's canary paths (budget, abort,
refusal) in fast tests. The kind tier's TiDB STAND-IN over etcd raft groups is the proof.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosdemo_local.simulation.tidb_protocol import SqlFail, SqlServer

__all__ = ["CANARY_USER", "SimulatedTiDB", "TiDBModel"]

# A second user beside root, for the tests of spec.canary.credentialsSecret (a test value, never a real one).
CANARY_USER = ("canary", "local-tier-canary-password")


@dataclass
class TiDBModel:
    """The SIMULATED cluster's canary data: databases, rows, and who leads them. A ``Backend``."""

    stores: Callable[[], dict[str, str]]  # store id -> "serving", "stopped" or "gone" (from the SIMULATED PD)
    election_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    users: dict[str, str] = field(default_factory=lambda: {"root": "", CANARY_USER[0]: CANARY_USER[1]})
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    _since: dict[str, float] = field(default_factory=dict)  # store -> when it stopped serving

    def _db(self, name: str) -> dict[str, Any]:
        if name not in self.databases:
            raise SqlFail(1049, f"Unknown database '{name}'")
        return self.databases[name]

    def leader(self, db: str, part: int) -> str:
        """The part's leader, moved to a serving store once an election would have run."""
        regions, now, states = self._db(db)["regions"], self.clock(), self.stores()
        for store, state in states.items():
            if state == "serving":
                self._since.pop(store, None)
            else:
                self._since.setdefault(store, now)
        start, lead = regions[part]
        if states.get(lead, "gone") != "serving" and now - self._since.get(lead, now) >= self.election_seconds:
            serving = sorted(s for s, st in states.items() if st == "serving")
            if serving:
                regions[part] = (start, serving[part % len(serving)])
        return str(regions[part][1])

    async def reach(self, db: str, row: int) -> None:
        """Wait or fail as TiDB's client would on a row whose leader is not serving."""
        regions = self._db(db)["regions"]
        part = max(i for i, (start, _) in enumerate(regions) if start <= row or i == 0)
        deadline = self.clock() + 60
        while self.clock() < deadline:
            state = self.stores().get(self.leader(db, part), "gone")
            if state == "serving":
                return
            if state == "gone":
                await asyncio.sleep(0.05)  # a backoff, then the region is unavailable
                raise SqlFail(9005, "Region is unavailable")
            await asyncio.sleep(0.1)  # stopped: nothing answers; the client gives up first
        raise SqlFail(9002, "TiKV server timeout")

    async def exists(self, db: str) -> bool:
        return db in self.databases

    async def owner(self, db: str) -> str | None:
        owner = self._db(db).get("owner")
        return None if owner is None else str(owner)

    async def create(self, db: str) -> None:
        self.databases[db] = {"rows": {}, "regions": [(0, sorted(self.stores())[0])]}

    async def set_owner(self, db: str, uid: str) -> None:
        self._db(db)["owner"] = uid

    async def insert(self, db: str, rows: dict[int, int]) -> None:
        self._db(db)["rows"].update({r: [b, 0] for r, b in rows.items()})

    async def split(self, db: str, accounts: int, parts: int) -> int:
        n, stores = max(1, parts), sorted(self.stores())
        step = max(1, accounts // n)
        self._db(db)["regions"] = [(i * step, stores[i % len(stores)]) for i in range(n)]
        return n

    async def regions(self, db: str) -> list[tuple[int, str]]:
        return [(start, self.leader(db, i)) for i, (start, _) in enumerate(self._db(db)["regions"])]

    async def read(self, db: str, row: int) -> int | None:
        await self.reach(db, row)
        found = self._db(db)["rows"].get(row)
        return None if found is None else int(found[0])

    async def touch(self, db: str, row: int) -> None:
        await self.reach(db, row)
        if (found := self._db(db)["rows"].get(row)) is not None:
            found[1] += 1

    async def apply(self, db: str, moves: list[tuple[int, int]]) -> None:
        for row, _ in moves:
            await self.reach(db, row)
        rows = self._db(db)["rows"]
        for row, delta in moves:
            if row in rows:
                rows[row][0] += delta

    async def total(self, db: str) -> int:
        rows = self._db(db)["rows"]
        for row in list(rows):
            await self.reach(db, row)
        return sum(int(r[0]) for r in rows.values())

    async def drop(self, db: str) -> None:
        self.databases.pop(db, None)


class SimulatedTiDB(SqlServer):
    """The SIMULATED TiDB's server: ``await start(host, port)``, then ``close()``."""

    def __init__(self, model: TiDBModel) -> None:
        super().__init__(model, model.users)
        self.model = model

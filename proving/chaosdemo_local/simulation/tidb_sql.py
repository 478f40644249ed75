"""SIMULATED TiDB for the local tier: exactly the SQL canary's statements, over the real MySQL protocol.

Not TiDB, and not a data path: the local tier's stores are SIMULATED (kwok runs no TiKV), so this keeps
the canary's rows in memory and plays a store's loss from what the SIMULATED PD says of the store that
leads them. A statement on rows led by a store that is not serving waits (a stopped store: until the
client gives up) or fails with TiDB's ``9005 Region is unavailable`` (a store that is gone), until an
election moves the lead to a serving store ``election_seconds`` (TiKV's 10 s) after it stopped
serving. That is this module's model, not an effect of real consensus: it keeps the operator's canary
paths (budget, abort, refusal) in fast tests. The kind tier's data path is the proof.

The wire protocol is real (mysql-mimic); the statements are matched one by one, and anything else
is refused with ``1105``, as an unknown statement would be.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mysql_mimic import MysqlServer
from mysql_mimic.auth import IdentityProvider, NativePasswordAuthPlugin, User
from mysql_mimic.errors import MysqlError
from mysql_mimic.session import BaseSession
from mysql_mimic.variables import GlobalVariables, SessionVariables

__all__ = ["SimulatedTiDB", "TiDBModel"]

TABLE_ID = 112  # the canary's table id in the region keys, as TiDB would give one
Result = tuple[list[tuple[Any, ...]], list[str]]


class _Code(int):
    """An error code mysql-mimic passes through as it is (TiDB's own codes are not MySQL's enum)."""


def fail(code: int, message: str) -> MysqlError:
    return MysqlError(message, _Code(code))


@dataclass
class TiDBModel:
    """The SIMULATED cluster's data: databases, the canary's rows, and who leads them."""

    stores: Callable[[], dict[str, str]]  # store id -> "serving", "stopped" or "gone" (from the SIMULATED PD)
    election_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    users: dict[str, str] = field(default_factory=lambda: {"root": ""})
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    _since: dict[str, float] = field(default_factory=dict)  # store -> when it stopped serving

    def leader(self, db: str, part: int) -> str:
        """The part's leader, moved to a serving store once an election would have run."""
        regions, now, states = self.databases[db]["regions"], self.clock(), self.stores()
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
        regions = self.databases[db]["regions"]
        part = max(i for i, (start, _) in enumerate(regions) if start <= row or i == 0)
        deadline = self.clock() + 60
        while self.clock() < deadline:
            lead = self.leader(db, part)
            state = self.stores().get(lead, "gone")
            if state == "serving":
                return
            if state == "gone":
                await asyncio.sleep(0.05)  # a backoff, then the region is unavailable
                raise fail(9005, "Region is unavailable")
            await asyncio.sleep(0.1)  # stopped: nothing answers; the client gives up first
        raise fail(9002, "TiKV server timeout")


_S = r"(chaosdemo_canary_[a-z0-9]+)"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(p, re.I | re.S)) for name, p in [
    ("exists", rf"SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA\.SCHEMATA WHERE SCHEMA_NAME = '{_S}'"),
    ("owner", rf"SELECT uid FROM {_S}\.canary_owner"),
    ("create_db", rf"CREATE DATABASE {_S}"),
    ("create_owner", rf"CREATE TABLE {_S}\.canary_owner \(.*\)"),
    ("set_owner", rf"INSERT INTO {_S}\.canary_owner \(uid\) VALUES \('([a-z0-9-]+)'\)"),
    ("create_accounts", rf"CREATE TABLE {_S}\.accounts \(.*\)"),
    ("insert", rf"INSERT INTO {_S}\.accounts \(id, balance\) VALUES (.*)"),
    ("split", rf"SPLIT TABLE {_S}\.accounts BETWEEN \(0\) AND \((\d+)\) REGIONS (\d+)"),
    ("regions", rf"SHOW TABLE {_S}\.accounts REGIONS"),
    ("read", rf"SELECT balance FROM {_S}\.accounts WHERE id = (\d+)"),
    ("touch", rf"UPDATE {_S}\.accounts SET touched = touched \+ 1 WHERE id = (\d+)"),
    ("move", rf"UPDATE {_S}\.accounts SET balance = balance ([-+]) 1 WHERE id = (\d+)"),
    ("sum", rf"SELECT SUM\(balance\) FROM {_S}\.accounts"),
    ("drop", rf"DROP DATABASE IF EXISTS {_S}"),
    ("begin", r"BEGIN"), ("commit", r"COMMIT"), ("rollback", r"ROLLBACK"),
    ("set", r"SET .*"),
]]


class _Session(BaseSession):
    def __init__(self, model: TiDBModel) -> None:
        self.model, self.variables = model, SessionVariables(GlobalVariables())
        self.username: str | None = None
        self.database: str | None = None
        self.pending: list[tuple[str, int, int]] | None = None  # a transaction's moves, applied at COMMIT

    async def handle_query(self, sql: str, attrs: dict[str, str]) -> Result:
        sql = sql.strip().rstrip(";")
        for name, pattern in _PATTERNS:
            if m := pattern.fullmatch(sql):
                answer: Result = await getattr(self, "_" + name)(*m.groups())
                return answer
        raise fail(1105, f"the SIMULATED TiDB answers only the canary's statements, not: {sql[:80]}")

    def _db(self, name: str) -> dict[str, Any]:
        if name not in self.model.databases:
            raise fail(1049, f"Unknown database '{name}'")
        return self.model.databases[name]

    async def _exists(self, db: str) -> Result:
        return ([(db,)] if db in self.model.databases else []), ["SCHEMA_NAME"]

    async def _owner(self, db: str) -> Result:
        owner = self._db(db).get("owner")
        if owner is None:
            raise fail(1146, f"Table '{db}.canary_owner' doesn't exist")
        return [(owner,)], ["uid"]

    async def _create_db(self, db: str) -> Result:
        if db in self.model.databases:
            raise fail(1007, f"Can't create database '{db}'; database exists")
        self.model.databases[db] = {"rows": {}, "regions": [(0, sorted(self.model.stores())[0])]}
        return [], []

    async def _create_owner(self, db: str) -> Result:
        self._db(db)
        return [], []

    async def _set_owner(self, db: str, uid: str) -> Result:
        self._db(db)["owner"] = uid
        return [], []

    async def _create_accounts(self, db: str) -> Result:
        self._db(db)
        return [], []

    async def _insert(self, db: str, values: str) -> Result:
        rows = self._db(db)["rows"]
        for row, balance in re.findall(r"\((\d+), (-?\d+)\)", values):
            rows[int(row)] = [int(balance), 0]
        return [], []

    async def _split(self, db: str, accounts: str, parts: str) -> Result:
        n, stores = max(1, int(parts)), sorted(self.model.stores())
        step = max(1, int(accounts) // n)
        self._db(db)["regions"] = [(i * step, stores[i % len(stores)]) for i in range(n)]
        return [(n - 1, 1.0)], ["TOTAL_SPLIT_REGION", "SCATTER_FINISH_RATIO"]

    async def _regions(self, db: str) -> Result:
        regions = self._db(db)["regions"]
        rows = [(1000 + i, f"t_{TABLE_ID}_r_{start}" if i else f"t_{TABLE_ID}_", "", 2000 + i,
                 int(self.model.leader(db, i))) for i, (start, _) in enumerate(regions)]
        return rows, ["REGION_ID", "START_KEY", "END_KEY", "LEADER_ID", "LEADER_STORE_ID"]

    async def _read(self, db: str, row: str) -> Result:
        await self.model.reach(db, int(row))
        found = self._db(db)["rows"].get(int(row))
        return ([(found[0],)] if found else []), ["balance"]

    async def _touch(self, db: str, row: str) -> Result:
        await self.model.reach(db, int(row))
        if (found := self._db(db)["rows"].get(int(row))) is not None:
            found[1] += 1
        return [], []

    async def _move(self, db: str, sign: str, row: str) -> Result:
        await self.model.reach(db, int(row))
        move = (db, int(row), 1 if sign == "+" else -1)
        if self.pending is not None:
            self.pending.append(move)
        else:
            self._apply([move])
        return [], []

    def _apply(self, moves: list[tuple[str, int, int]]) -> None:
        for db, row, delta in moves:
            if (found := self._db(db)["rows"].get(row)) is not None:
                found[0] += delta

    async def _sum(self, db: str) -> Result:
        rows = self._db(db)["rows"]
        for row in rows:
            await self.model.reach(db, row)
        return [(sum(r[0] for r in rows.values()),)], ["SUM(balance)"]

    async def _drop(self, db: str) -> Result:
        self.model.databases.pop(db, None)
        return [], []

    async def _begin(self) -> Result:
        self.pending = []
        return [], []

    async def _commit(self) -> Result:
        self._apply(self.pending or [])
        self.pending = None
        return [], []

    async def _rollback(self) -> Result:
        self.pending = None
        return [], []

    async def _set(self) -> Result:
        return [], []


class _Users(IdentityProvider):
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    async def get_user(self, username: str) -> User | None:
        if username not in self.users:
            return None
        password = self.users[username]
        return User(name=username, auth_plugin=NativePasswordAuthPlugin.name,
                    auth_string=NativePasswordAuthPlugin.create_auth_string(password) if password else None)


class SimulatedTiDB:
    """The SIMULATED TiDB's server: ``await start(host, port)``, then ``close()``."""

    def __init__(self, model: TiDBModel) -> None:
        self.model = model
        self.server = MysqlServer(session_factory=lambda: _Session(model), identity_provider=_Users(model.users))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.server.start_server(host=host, port=port)
        return int(self.server.sockets()[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()

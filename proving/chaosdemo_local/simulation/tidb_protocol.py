"""The SQL canary's statements, served over the MySQL protocol (mysql-mimic) from a storage backend.

Shared by the two TiDBs of the proving ground, each named for what it is: the local tier's SIMULATED TiDB
(``simulation/tidb_sql.py``: rows in memory, availability played from the SIMULATED PD) and the kind
tier's TiDB STAND-IN (``standins/tidb_server.py``: rows in etcd raft groups inside the TiKV STAND-INs, so
a fault's cost to clients comes from real elections over the pod network). Neither is TiDB: each answers
exactly the canary's statements (``chaosdemo.core.canary_plan``) and refuses anything else with ``1105``.

A transaction's updates are kept by the session and handed to the backend at ``COMMIT`` as one batch,
which the backend applies atomically or not at all; a connection that drops first leaves nothing.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from mysql_mimic import MysqlServer
from mysql_mimic.auth import IdentityProvider, NativePasswordAuthPlugin, User
from mysql_mimic.errors import MysqlError
from mysql_mimic.session import BaseSession
from mysql_mimic.variables import GlobalVariables, SessionVariables

__all__ = ["TABLE_ID", "Backend", "SqlFail", "SqlServer"]

TABLE_ID = 112  # the canary's table id in the region keys, as TiDB would give one
Result = tuple[list[tuple[Any, ...]], list[str]]


class SqlFail(Exception):
    """An error as TiDB would send it: its MySQL error code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Backend(Protocol):
    async def exists(self, db: str) -> bool: ...
    async def owner(self, db: str) -> str | None: ...
    async def create(self, db: str) -> None: ...
    async def set_owner(self, db: str, uid: str) -> None: ...
    async def insert(self, db: str, rows: dict[int, int]) -> None: ...
    async def split(self, db: str, accounts: int, parts: int) -> int: ...
    async def regions(self, db: str) -> list[tuple[int, str]]: ...  # (first row, leader's PD store id)
    async def read(self, db: str, row: int) -> int | None: ...
    async def touch(self, db: str, row: int) -> None: ...
    async def apply(self, db: str, moves: list[tuple[int, int]]) -> None: ...  # (row, delta), atomically
    async def total(self, db: str) -> int: ...
    async def drop(self, db: str) -> None: ...


class _Code(int):
    """An error code mysql-mimic passes through as it is (TiDB's own codes are not MySQL's enum)."""


_S = r"(chaosdemo_canary_[a-z0-9]+)"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(p, re.I | re.S)) for name, p in [
    ("exists", rf"SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA\.SCHEMATA WHERE SCHEMA_NAME = '{_S}'"),
    ("owner", rf"SELECT uid FROM {_S}\.canary_owner"),
    ("create", rf"CREATE DATABASE {_S}"),
    ("nothing", rf"CREATE TABLE {_S}\.(?:canary_owner|accounts) \(.*\)"),
    ("set_owner", rf"INSERT INTO {_S}\.canary_owner \(uid\) VALUES \('([a-z0-9-]+)'\)"),
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
    def __init__(self, backend: Backend) -> None:
        self.backend, self.variables = backend, SessionVariables(GlobalVariables())
        self.username: str | None = None
        self.database: str | None = None
        self.pending: tuple[str, list[tuple[int, int]]] | None = None  # a transaction's moves, until COMMIT

    async def handle_query(self, sql: str, attrs: dict[str, str]) -> Result:
        sql = sql.strip().rstrip(";")
        for name, pattern in _PATTERNS:
            if m := pattern.fullmatch(sql):
                try:
                    answer: Result = await getattr(self, "_" + name)(*m.groups())
                except SqlFail as e:
                    raise MysqlError(e.message, _Code(e.code)) from None
                return answer
        raise MysqlError(f"this STAND-IN answers only the SQL canary's statements, not: {sql[:80]}", _Code(1105))

    async def _exists(self, db: str) -> Result:
        return ([(db,)] if await self.backend.exists(db) else []), ["SCHEMA_NAME"]

    async def _owner(self, db: str) -> Result:
        owner = await self.backend.owner(db)
        if owner is None:
            raise SqlFail(1146, f"Table '{db}.canary_owner' doesn't exist")
        return [(owner,)], ["uid"]

    async def _create(self, db: str) -> Result:
        if await self.backend.exists(db):
            raise SqlFail(1007, f"Can't create database '{db}'; database exists")
        await self.backend.create(db)
        return [], []

    async def _nothing(self, db: str) -> Result:
        if not await self.backend.exists(db):
            raise SqlFail(1049, f"Unknown database '{db}'")
        return [], []

    async def _set_owner(self, db: str, uid: str) -> Result:
        await self.backend.set_owner(db, uid)
        return [], []

    async def _insert(self, db: str, values: str) -> Result:
        await self.backend.insert(db, {int(r): int(b) for r, b in re.findall(r"\((\d+), (-?\d+)\)", values)})
        return [], []

    async def _split(self, db: str, accounts: str, parts: str) -> Result:
        n = await self.backend.split(db, int(accounts), int(parts))
        return [(n - 1, 1.0)], ["TOTAL_SPLIT_REGION", "SCATTER_FINISH_RATIO"]

    async def _regions(self, db: str) -> Result:
        rows = [(1000 + i, f"t_{TABLE_ID}_r_{start}" if i else f"t_{TABLE_ID}_", "", 2000 + i, int(leader))
                for i, (start, leader) in enumerate(await self.backend.regions(db))]
        return rows, ["REGION_ID", "START_KEY", "END_KEY", "LEADER_ID", "LEADER_STORE_ID"]

    async def _read(self, db: str, row: str) -> Result:
        found = await self.backend.read(db, int(row))
        return ([(found,)] if found is not None else []), ["balance"]

    async def _touch(self, db: str, row: str) -> Result:
        await self.backend.touch(db, int(row))
        return [], []

    async def _move(self, db: str, sign: str, row: str) -> Result:
        move = (int(row), 1 if sign == "+" else -1)
        if self.pending is None:
            await self.backend.apply(db, [move])
        elif self.pending[0] in ("", db):
            self.pending = (db, [*self.pending[1], move])
        else:
            raise SqlFail(1105, "one transaction, one canary database")
        return [], []

    async def _sum(self, db: str) -> Result:
        return [(await self.backend.total(db),)], ["SUM(balance)"]

    async def _drop(self, db: str) -> Result:
        await self.backend.drop(db)
        return [], []

    async def _begin(self) -> Result:
        self.pending = ("", [])
        return [], []

    async def _commit(self) -> Result:
        pending, self.pending = self.pending, None
        if pending and pending[1]:
            await self.backend.apply(pending[0], pending[1])
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


class SqlServer:
    """The MySQL protocol over a backend: ``await start(host, port)``, then ``close()``."""

    def __init__(self, backend: Backend, users: dict[str, str] | None = None) -> None:
        self.server = MysqlServer(session_factory=lambda: _Session(backend),
                                  identity_provider=_Users(users if users is not None else {"root": ""}))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.server.start_server(host=host, port=port)
        return int(self.server.sockets()[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()

"""TiDB through the MySQL protocol (aiomysql, a maintained asyncio driver): the SQL canary's only door.

A statement either returns its rows or raises ``SqlError`` with the MySQL error code as TiDB sent it
(``9005`` Region is unavailable, ``1105``, ``2013`` lost connection...) or ``timeout`` when the canary
gave up on it; a connection that timed out or broke is closed, never reused, so a statement stuck on a
paused store cannot hold a transaction open on the next one. Nothing here builds SQL: the canary's
statements are fixed text with integers formatted in (``run/canary.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiomysql
import pymysql

__all__ = ["BROKEN", "SqlError", "SqlPool", "SqlTarget"]

# Codes after which the connection is not reused: it is gone, or its state is unknown.
BROKEN = {"timeout", "2003", "2006", "2013", "2055", "refused"}


class SqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message[:300]


@dataclass(frozen=True)
class SqlTarget:
    host: str
    port: int
    user: str
    password: str
    tls: ssl.SSLContext | None = None  # none yet: a TLS-only TiDB is refused in the preflight


def _code(e: BaseException) -> SqlError:
    if isinstance(e, asyncio.TimeoutError | TimeoutError):
        return SqlError("timeout", "no answer in time")
    if isinstance(e, pymysql.err.MySQLError) and e.args and isinstance(e.args[0], int):
        return SqlError(str(e.args[0]), str(e.args[1]) if len(e.args) > 1 else "")
    if isinstance(e, ConnectionRefusedError):
        return SqlError("refused", str(e))
    return SqlError(type(e).__name__, str(e))


class SqlPool:
    """Connections to one TiDB, at most ``size`` at once; each statement under its own timeout."""

    def __init__(self, target: SqlTarget, *, size: int, timeout: float) -> None:
        self.target, self.size, self.timeout = target, size, timeout
        self._idle: list[Any] = []
        self._open = 0

    @property
    def busy(self) -> int:
        return self._open - len(self._idle)

    async def _connect(self) -> Any:
        t = self.target
        return await aiomysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                      autocommit=True, connect_timeout=self.timeout, ssl=t.tls)

    async def run(self, statements: Sequence[str]) -> list[tuple[Any, ...]]:
        """Run the statements on one connection, in order, within one timeout; the last one's rows.

        A failure of any statement rolls back what it began (the connection is closed, so TiDB aborts
        an open transaction) and raises ``SqlError``; so does a pool with no connection to spare.
        """
        if not self._idle and self._open >= self.size:
            raise SqlError("saturated", f"all {self.size} connections are waiting on earlier statements")
        if self._idle:
            conn = self._idle.pop()
        else:
            conn, self._open = None, self._open + 1
        try:
            async with asyncio.timeout(self.timeout):
                if conn is None:
                    conn = await self._connect()
                async with conn.cursor() as cur:
                    for sql in statements:
                        await cur.execute(sql)
                    rows = await cur.fetchall()
        except BaseException as e:
            self._open -= 1
            if conn is not None:
                conn.close()
            if isinstance(e, asyncio.CancelledError):
                raise
            raise _code(e) from None
        self._idle.append(conn)
        return list(rows)

    async def aclose(self) -> None:
        for conn in self._idle:
            with contextlib.suppress(Exception):
                conn.close()
        self._open -= len(self._idle)
        self._idle.clear()

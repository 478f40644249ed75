"""The SQL canary of one demo: its own database in the TidbCluster's TiDB, a bank, and statements on a
fixed schedule from the baseline until the cluster recovered, folded into a tally (``core/canary.py``).

Open loop: a statement is sent every ``1/rate`` seconds whatever happened to the ones before, each on a
connection of its own from a bounded pool and under its own timeout, so a stalled store shows as
failures and time, never as a slower schedule. Every two seconds the bank's total is read. The
canary's memory is the tally's (per-second aggregates), not the statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from chaosdemo.api.errors import PreflightFailed
from chaosdemo.api.models import CanarySpec
from chaosdemo.clients.sql import BROKEN, SqlError, SqlPool
from chaosdemo.core.canary import Tally
from chaosdemo.core.canary_plan import Layout, Plan, parse_regions

__all__ = ["Canary"]

log = logging.getLogger(__name__)
TOTAL_EVERY = 2.0  # seconds between two reads of the bank's total
PREPARE_SECONDS = 15.0
# Answers lost or late, asked again in the preflight; nothing listening ("refused", 2003) is final at once.
TRANSIENT = BROKEN - {"refused", "2003"}
MAX_POOL = 128  # the default rate (20) times the default timeout (5 s) fits, so no statement waits for one


def pool_size(spec: CanarySpec) -> int:
    """Enough connections for every statement of one timeout at the rate, bounded."""
    return min(MAX_POOL, math.ceil(spec.rate_per_second * spec.statement_timeout_seconds) + 4)


class Canary:
    def __init__(self, pool: SqlPool, spec: CanarySpec, plan: Plan, owner: str, *,
                 clock: Callable[[], float] = time.monotonic, seed: int = 0,
                 on_statement: Callable[[bool, str | None, float], None] | None = None) -> None:
        self.pool, self.spec, self.plan, self.owner, self.clock = pool, spec, plan, owner, clock
        self.on_statement = on_statement  # each finished statement, for the metrics
        self.tally = Tally()
        self.layout: Layout | None = None
        self.resumed = False  # the database was there already: an operator restarted mid-demo
        self.t0 = clock()
        self.epoch0 = 0.0  # the wall clock at the canary's 0
        self.injected: float | None = None  # on the canary's clock
        self.led: tuple[int, ...] = ()  # the parts the broken store led at the injection
        self.share: float | None = None  # and their share of the rows
        self.ranges: tuple[tuple[int, int], ...] | None = None  # and those rows; None: not known
        self.note = ""
        self._rng = random.Random(seed)
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._last_code = ""  # the driver's code of the last failed preparation

    def now(self) -> float:
        return self.clock() - self.t0

    async def prepare(self, stores: int) -> None:
        """Create the canary's database (or take back its own after a restart); refuse any other."""
        deadline = self.clock() + max(PREPARE_SECONDS, 3 * self.spec.statement_timeout_seconds)
        await _asked_again(lambda: self._prepare(stores), lambda: self._last_code, deadline, self.clock)

    async def _prepare(self, stores: int) -> None:
        self._last_code = ""
        try:
            found = await self.pool.run([self.plan.exists()])
            if found:
                owner = await self._owner()
                if owner != self.owner:
                    raise PreflightFailed(
                        f"database {self.plan.db} exists and the canary did not create it for this demo "
                        f"({owner or 'no owner recorded'}): it is never touched; drop it or turn the canary off "
                        "(spec.canary.enabled: false)", reason="CanaryRefused")
                self.resumed = True
            else:
                for step in self.plan.create(self.owner, stores):
                    await self.pool.run(step)
            self.layout = await self.read_layout()
        except SqlError as e:
            self._last_code = e.code
            raise PreflightFailed(_advice(e), reason="CanaryUnavailable") from None

    async def _owner(self) -> str:
        try:
            rows = await self.pool.run([self.plan.owner()])
        except SqlError:
            return ""
        return str(rows[0][0]) if rows else ""

    async def read_layout(self) -> Layout:
        rows = await self.pool.run([self.plan.regions()])
        columns = ["REGION_ID", "START_KEY", "END_KEY", "LEADER_ID", "LEADER_STORE_ID"]  # TiDB's first five
        return parse_regions(columns, [r[:5] for r in rows])

    def start(self, epoch: float) -> None:
        """Start sending; ``epoch`` is the wall clock now, so the status can say when things happened."""
        self.t0, self.epoch0 = self.clock(), epoch
        self._task = asyncio.create_task(self._loop(), name=f"canary {self.plan.db}")

    async def _loop(self) -> None:
        interval, n = 1.0 / self.spec.rate_per_second, 0
        next_total = 0.0
        while True:
            due = n * interval
            await asyncio.sleep(max(0.0, due - self.now()))
            self._spawn(self._statement(n))
            if self.now() >= next_total:
                self._spawn(self._total())
                next_total = self.now() + TOTAL_EVERY
            n += 1

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _statement(self, n: int) -> None:
        assert self.layout is not None
        row = self._rng.randrange(self.plan.accounts)
        part = self.layout.part_of(row)
        kind = n % 3
        if kind == 0:
            statements = self.plan.read(row)
        elif kind == 1:
            statements = self.plan.write(row)
        else:
            rows = self.layout.rows_of(part, self.plan.accounts)
            statements = self.plan.transfer(row, self._rng.choice(rows) if len(rows) > 1 else row)
        started = self.clock()
        ok, code = True, None
        try:
            await self.pool.run(statements)
        except SqlError as e:
            ok, code = False, e.code
        took = self.clock() - started
        self.tally.add(self.now(), ok, took, code, part)
        if self.on_statement is not None:
            self.on_statement(ok, code, took)

    async def _total(self) -> None:
        with contextlib.suppress(SqlError):
            rows = await self.pool.run(self.plan.sum())
            if rows and rows[0][0] is not None:
                self.tally.total(self.now(), int(rows[0][0]), self.plan.total)

    async def mark_injected(self, store: str) -> None:
        """The fault is about to be injected into ``store``: which of the canary's rows it leads now."""
        with contextlib.suppress(SqlError, ValueError):
            self.layout = await self.read_layout()
        if self.layout is not None:
            self.led = tuple(self.layout.led_by(store))
            self.share = self.layout.share_led_by(store, self.plan.accounts)
            self.ranges = tuple(self.layout.ranges_led_by(store, self.plan.accounts))
        self.injected = self.now()

    def remember(self, ranges: Sequence[tuple[int, int]], share: float | None) -> None:
        """A restarted operator: the rows the broken store led at the injection are the ones the status kept
        (read from the status, so bounded to the table: a range past it names no part)."""
        self.ranges = tuple((max(0, a), min(b, self.plan.accounts)) for a, b in ranges if a < b)
        self.share = share
        self.led = tuple(self.layout.parts_within(self.ranges)) if self.layout is not None else ()

    async def stop(self) -> None:
        """Stop sending; statements still out are given up (not counted), then one last read of the total."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        await self._total()  # one last read of the bank's total

    async def drop(self) -> bool:
        """Drop the canary's database, on every way out; False if TiDB would not."""
        try:
            await self.pool.run([self.plan.drop()])
        except SqlError as e:
            log.warning("could not drop the canary's database %s: %s", self.plan.db, e)
            return False
        finally:
            await self.pool.aclose()
        return True


async def _asked_again(attempt: Callable[[], Awaitable[None]], code: Callable[[], str], deadline: float,
                       clock: Callable[[], float]) -> None:
    """``attempt`` until it passes; a TiDB that lost or did not answer a statement (TRANSIENT) is asked again
    every 2 s until ``deadline`` (a cluster just recovered from the last demo may still be finding its
    leaders: seen on kind); any other refusal is final at once."""
    while True:
        try:
            await attempt()
            return
        except PreflightFailed as e:
            if e.reason != "CanaryUnavailable" or code() not in TRANSIENT or clock() >= deadline:
                raise
            log.info("the SQL canary's TiDB is not answering yet (%s); asking again", e.message)
            await asyncio.sleep(2)


def _advice(e: SqlError) -> str:
    fix = {
        "1045": "TiDB refused the canary's user and password (spec.canary.credentialsSecret's; without one, root "
                "with no password, tidb-operator's default)",
        "1044": "the user may not create the canary's database: grant it CREATE and DROP on chaosdemo_canary_%",
        "1142": "the user may not create the canary's table: grant it CREATE, INSERT, UPDATE, SELECT and DROP",
        "refused": "nothing listens on TiDB's MySQL port: is the TidbCluster's TiDB running?",
        "2003": "TiDB cannot be reached on its MySQL port: is the TidbCluster's TiDB running?",
        "timeout": "TiDB did not answer in time",
        "3159": "TiDB accepts only TLS connections, which the canary does not speak yet",
    }.get(e.code, "")
    return (f"the SQL canary cannot use TiDB ({e.code}: {e.message})"
            + (f": {fix}" if fix else "") + "; or turn it off with spec.canary.enabled: false")

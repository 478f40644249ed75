"""What TiDB's clients felt, in the run: the SQL canary opened in the preflight (or on a resume), its
baseline judged before anything is injected, its tally read at every look, and judged at the end.

The canary itself is ``run/canary.py``; the numbers are ``core/canary.py``'s; the status is the story's
(``Felt``). A breach of the budget with ``abortOnBreach`` ends the demo at once (``BudgetExceeded``: the
lifecycle undoes a held fault through the same path as every other way out); without it the breach is
said after recovery. A bank whose total changed always fails the demo (``DataInconsistent``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from chaosdemo.api.errors import DemoFailed, Forbidden, PreflightFailed
from chaosdemo.api.models import CanarySpec
from chaosdemo.clients.sql import SqlError, SqlPool, SqlTarget
from chaosdemo.core.addresses import tidb_address
from chaosdemo.core.canary import (
    Budget,
    Impact,
    baseline_refusal,
    breaches,
    by_leader,
    failures_between,
    impact,
    sighting,
    to_status,
)
from chaosdemo.core.canary_plan import Plan, credentials, database_for
from chaosdemo.core.story import CanaryStarted, Felt, RowsMarked
from chaosdemo.run.canary import Canary, pool_size
from chaosdemo.run.deps import Deps
from chaosdemo.run.state import RunState

__all__ = ["clients_evidence", "drop_left", "feel", "judge", "mark", "open_canary", "until_served"]

log = logging.getLogger(__name__)
SAY_EVERY = 5.0  # seconds between two saves of the status while users wait after recovery


GRANT_HINT = ("the chart grants the operator only the Secrets its value canary.credentialSecrets names, in "
              "targetNamespaces (helm upgrade ... --set canary.credentialSecrets={{{name}}})")


async def login(deps: Deps, spec: CanarySpec, namespace: str) -> tuple[str, str]:
    """The canary's user and password: the named Secret's, or root with no password (tidb-operator's default)."""
    name = spec.credentials_secret
    if not name:
        return "root", ""
    try:
        secret = await deps.kube.cluster.get_secret(namespace, name)
    except Forbidden:
        raise PreflightFailed(f"the operator may not read Secret {namespace}/{name} for the SQL canary: "
                              + GRANT_HINT.format(name=name), reason="CanaryCredentials") from None
    if secret is None:
        raise PreflightFailed(f"Secret {namespace}/{name} (spec.canary.credentialsSecret) does not exist",
                              reason="CanaryCredentials")
    try:
        return credentials(f"{namespace}/{name}", secret.get("data"))
    except ValueError as e:
        raise PreflightFailed(f"the SQL canary's credentials: {e}", reason="CanaryCredentials") from None


async def _pool(deps: Deps, spec: CanarySpec, cluster: str, namespace: str) -> SqlPool:
    s = deps.settings
    host, port = tidb_address(s.tidb_address_template, s.cluster_domain, cluster, namespace)
    user, password = await login(deps, spec, namespace)
    return deps.sql(SqlTarget(host, port, user, password), pool_size(spec), spec.statement_timeout_seconds)


async def drop_left(deps: Deps, spec: CanarySpec, cluster: str, namespace: str, uid: str) -> str:
    """The demo is being deleted: its canary's database goes too, if a run that died left it (bounded)."""
    try:
        pool = await _pool(deps, spec, cluster, namespace)
    except PreflightFailed as e:
        return f"the SQL canary's database could not be checked ({e.message})"
    canary = Canary(pool, spec, Plan(database_for(uid), spec.accounts), uid)
    try:
        async with asyncio.timeout(10):
            found = await canary.pool.run([canary.plan.exists()])
            if found and await canary.pool.run([canary.plan.owner()]) == [(uid,)]:
                return "dropped the SQL canary's database" if await canary.drop() else "the canary's database stays"
    except (SqlError, TimeoutError) as e:
        return f"the SQL canary's database could not be checked ({e})"
    finally:
        await canary.pool.aclose()
    return "no SQL canary database left"


def budget_of(rs: RunState) -> Budget:
    c = rs.demo.spec.canary
    return Budget(max_unavailable_seconds=c.budget.max_unavailable_seconds,
                  min_throughput_share=c.budget.min_throughput_share,
                  max_statement_seconds=c.budget.max_statement_seconds if _rows_known(rs) else None,
                  serve_again_seconds=c.budget.serve_again_seconds)


def _rows_known(rs: RunState) -> bool:
    """Whether the canary knows which rows the broken store led at the injection; if not (an operator restarted
    with no record of them), the bound on the other rows' statements cannot be judged."""
    return rs.canary is None or rs.canary.injected is None or rs.canary.ranges is not None


async def open_canary(rs: RunState, stores: int, *, resumed: bool) -> None:
    """Start the canary in its own database; before an injection, take and judge its baseline."""
    spec = rs.demo.spec.canary
    if not spec.enabled or rs.canary is not None:
        return
    action, metrics, db = rs.demo.spec.fault.action, rs.deps.metrics, database_for(rs.demo.uid)
    try:
        pool = await _pool(rs.deps, spec, rs.demo.cluster, rs.demo.cluster_ns)
        canary = Canary(pool, spec, Plan(db, spec.accounts), rs.demo.uid,
                        on_statement=lambda ok, code, took: metrics.statement(action, ok, code, took))
        rs.canary = canary  # from here on, every way out drops its database (RunState.aclose)
        await canary.prepare(stores)
    except PreflightFailed as e:
        if not resumed:
            raise
        # A fault in place may hold TiDB's own answers (a paused store leading the canary's metadata): the
        # fault must still be followed and undone, so the demo goes on; its database is dropped at the end
        # (or when the demo is deleted).
        await rs.rec.tell(CanaryStarted(db, spec.baseline_seconds, resumed=True, not_resumed=e.message[:200]))
        return
    canary.start(rs.deps.clock())
    await rs.rec.tell(CanaryStarted(canary.plan.db, spec.baseline_seconds, resumed=resumed or canary.resumed))
    if resumed:
        resume_marks(rs, canary)
        return
    await asyncio.sleep(spec.baseline_seconds + 1.05)  # whole seconds of baseline
    why = baseline_refusal(canary.tally, 0, spec.baseline_seconds + 1, spec.rate_per_second, budget_of(rs))
    if why:
        raise PreflightFailed(f"the SQL canary's baseline does not meet its budget: {why}; nothing was injected",
                              reason="CanaryBaselineNotMet")


def resume_marks(rs: RunState, canary: Canary) -> None:
    """The canary carries on after a restart: the rows the broken store led are the ones the status kept at
    the injection. Read again now they would be wrong: a paused leader's rows have a new leader 10 s on, and
    their stalled statements would then count against the others' 2 s bound (seen on kind)."""
    impact = rs.status.impact
    kept = impact.affected_ranges if impact is not None else None
    canary.injected = 0.0
    canary.note = "the operator restarted mid-demo: the canary measured from then on, with no baseline"
    if kept is not None:
        canary.remember([(r.first, r.end) for r in kept], impact.affected_rows_share if impact else None)
    elif rs.status.injected_at is not None:
        canary.note += ("; which rows the broken store led was not recorded, so the bound on the other rows' "
                        "statements is not judged")


async def mark(rs: RunState, store: str) -> None:
    """The fault is about to be injected into ``store``: the rows it leads now, kept in the status before it is,
    so a restarted operator judges the same rows. A run resumed before its injection keeps what it recorded."""
    c = rs.canary
    if c is None:
        return
    if c.ranges is not None:  # remembered from the status
        c.injected = c.now()
        return
    await c.mark_injected(store)
    if c.ranges is not None:
        await rs.rec.tell(RowsMarked(c.ranges, c.share))


def _read(rs: RunState, c: Canary) -> Impact:
    assert c.injected is not None
    spec = rs.demo.spec
    baseline = (0.0, float(spec.canary.baseline_seconds + 1)) if not c.note else (0.0, 0.0)
    return impact(c.tally, baseline=baseline, injected=c.injected, now=c.now(), budget=budget_of(rs),
                  window=_window(rs), led=c.led)


def _rows_where(c: Canary) -> Callable[[int], str] | None:
    """Which rows a part of the table is, and its leader when the layout was read (TiDB's word, bounded)."""
    layout = c.layout
    if layout is None:
        return None

    def where(part: int) -> str:
        if not 0 <= part < len(layout.starts):
            return f"part {part} of the table"
        rows = layout.rows_of(part, c.plan.accounts)
        return f"rows {rows.start}-{rows.stop - 1}, led by store {layout.leaders[part][:20]} when last read"
    return where


def _window(rs: RunState) -> int:
    return max(1, rs.demo.spec.timeouts.stability_seconds)


def feel(rs: RunState, *, settled: bool) -> list[str]:
    """Read the canary's tally into the status (told, saved with the look); what broke the budget."""
    c = rs.canary
    if c is None or c.injected is None:
        return []
    i = _read(rs, c)
    said = breaches(i, budget_of(rs), injected=c.injected, settled=settled, where=_rows_where(c))
    if i.bank_total_held is False:
        said = [f"the bank's total changed: read {c.tally.totals_wrong[0][1]}, wrote {c.plan.total}", *said]
    rs.rec.told(Felt(to_status(i, said, epoch0=c.epoch0, injected=c.injected, share=c.share, note=c.note,
                               ranges=c.ranges),
                     sighting(i, epoch0=c.epoch0, injected=c.injected)))
    if i.bank_total_held is False:
        raise DemoFailed(f"the SQL canary's bank lost or gained money: {said[0]}", reason="DataInconsistent")
    return said


async def until_served(rs: RunState, c: Canary) -> None:
    """The cluster recovered, which is the components' word: users may still wait (rows whose new leader is
    not elected yet). The canary runs on until they are served again for the stability window, or until
    their serve-again budget is spent, saying so in the status every few seconds."""
    if c.injected is None:
        return
    deadline = c.injected + budget_of(rs).serve_again_seconds + _window(rs) + 1
    said_at = -1.0
    while c.now() < deadline:
        i = _read(rs, c)
        if i.unserved_from is None or i.served_again is not None:
            return
        if c.now() - said_at >= SAY_EVERY:
            log.info("%s: recovered, and TiDB's clients are not served again yet (since %.1f s after the injection)",
                     rs.demo.holder, i.unserved_from - c.injected)
            feel(rs, settled=False)
            await rs.rec.save()
            said_at = c.now()
        await asyncio.sleep(1)


async def judge(rs: RunState) -> None:
    """The cluster recovered: once users are served again (or their budget is spent), the canary stops, its
    last read of the bank's total is taken, and it is judged."""
    c = rs.canary
    if c is None:
        return
    await until_served(rs, c)
    await c.stop()
    said = feel(rs, settled=True)
    await rs.rec.save()
    impact = rs.status.impact
    if impact is not None and impact.longest_unavailable_seconds is not None:
        rs.deps.metrics.unavailable(rs.demo.spec.fault.action, impact.longest_unavailable_seconds)
    if said:
        raise DemoFailed(f"what TiDB's clients felt broke the budget: {'; '.join(said)}", reason="BudgetExceeded")


def clients_evidence(rs: RunState) -> tuple[list[tuple[str, int, int]], dict[str, int]]:
    """For the diagnosis: the canary's statements since the injection on the rows each store led, and their
    failures by code (nothing when the demo runs no canary)."""
    c = rs.canary
    if c is None or c.injected is None or c.layout is None:
        return [], {}
    rows = [(store, ok, bad) for store, (ok, bad) in by_leader(c.tally, c.injected, c.now(), c.layout.leaders).items()]
    return rows, failures_between(c.tally, int(c.injected), int(c.now()) + 1)

"""The SQL canary's arithmetic: what TiDB's clients felt, from per-second tallies.

Pure. The runner (``run/canary.py``) hands every finished statement to a ``Tally``, which keeps
per-second aggregates only (a latency histogram, counts by result and by error code, counts per
part of the table) and the gaps between successful statements longer than the resolution, so its
memory is bounded whatever the rate or the length of a demo. ``impact`` reads a tally into the
numbers the status shows; ``breaches`` holds them against the demo's budget.

Times are seconds on one clock (the runner's monotonic clock, shifted so the canary starts at 0).
Throughput is *successful statements per second*: the canary issues statements at a fixed rate
whatever happens to them (open loop), so a slow cluster shows as fewer successes and more
statements in flight, never as a slower schedule that hides the stall (the "coordinated omission"
go-ycsb and sysbench warn about).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from chaosdemo.api.models import ImpactStatus, ObserverSight, RowRange, RowsOutcome
from chaosdemo.api.timestamps import iso

__all__ = [
    "LATENCY_BOUNDS",
    "RESOLUTION",
    "TIMEOUT",
    "Budget",
    "Impact",
    "Second",
    "Tally",
    "baseline_refusal",
    "breaches",
    "by_leader",
    "failures_between",
    "impact",
    "percentile",
    "sighting",
    "to_status",
]

RESOLUTION = 0.1  # the unavailable window is resolved to this (the default rate issues one every 0.05 s)
# A stretch without a success shorter than this is not unavailability: at the default rate a part of the
# table that fails costs gaps of 0.1 s between the others' successes.
MIN_GAP = 0.25
SMOOTH = 3  # seconds over which throughput is read for "served again" (a trailing mean)
# The budget's lowest share is read over longer. One second holds 20 statements at the default rate, and
# a 2-core kind machine under a fault stalls healthy statements for a second now and then: a 3 s mean fell
# to 52% in a pause that cost a third of the rows. PingCAP's "QPS drops less than 50%" is read off
# dashboards whose rates span far longer; 10 s (the default stability window) keeps a drop of the keyspace
# a drop.
SHARE_WINDOW = 10
TIMEOUT = "timeout"  # the code a statement gets when the canary gave up on it
MAX_GAPS = 64  # the longest gaps kept; shorter ones are forgotten first
MAX_CODES = 16  # distinct error codes kept per second; the rest count as "other"

# Latency histogram bucket upper bounds, seconds: 1 ms to about 60 s in steps of 25%, so a percentile
# read from it is at most 25% above the true one, with 51 integers per second whatever the rate.
LATENCY_BOUNDS: tuple[float, ...] = tuple(0.001 * 1.25**i for i in range(50))


def _bucket(latency: float) -> int:
    if latency <= LATENCY_BOUNDS[0]:
        return 0
    i = math.ceil(math.log(latency / LATENCY_BOUNDS[0], 1.25) - 1e-9)
    return min(i, len(LATENCY_BOUNDS))


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The bucket bound below which a share ``q`` of the histogram's statements finished."""
    total = sum(hist)
    if not total:
        return None
    want, seen = q * total, 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= want:
            return LATENCY_BOUNDS[min(i, len(LATENCY_BOUNDS) - 1)]
    return LATENCY_BOUNDS[-1]


@dataclass
class Second:
    """One second of the canary: what finished in it (by when it finished)."""

    ok: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # error code (or "timeout") -> count
    hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    parts: dict[int, list[int]] = field(default_factory=dict)  # part -> [ok, failed]
    part_slowest: dict[int, float] = field(default_factory=dict)  # part -> its longest statement
    slowest: float = 0.0  # the longest any statement that finished in this second took, success or not
    first_bad: float | None = None  # when the first and the last failure of this second finished
    last_bad: float | None = None

    def add(self, ok: bool, code: str | None, latency: float, part: int | None, at: float = 0.0) -> None:
        self.slowest = max(self.slowest, latency)
        if not ok:
            self.first_bad = at if self.first_bad is None else min(self.first_bad, at)
            self.last_bad = at if self.last_bad is None else max(self.last_bad, at)
        if ok:
            self.ok += 1
            self.hist[_bucket(latency)] += 1
        else:
            key = code or "unknown"
            if key not in self.failed and len(self.failed) >= MAX_CODES:
                key = "other"
            self.failed[key] = self.failed.get(key, 0) + 1
        if part is not None:
            self.parts.setdefault(part, [0, 0])[0 if ok else 1] += 1
            self.part_slowest[part] = max(self.part_slowest.get(part, 0.0), latency)

    @property
    def bad(self) -> int:
        return sum(self.failed.values())


@dataclass(frozen=True)
class Gap:
    """A stretch with no successful statement: from the last success before it to the next one."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Tally:
    """Every finished statement, folded into seconds and gaps as it arrives."""

    def __init__(self) -> None:
        self.seconds: dict[int, Second] = {}
        self.gaps: list[Gap] = []
        self.last_ok: float = 0.0
        self.totals_checked = 0
        self.totals_wrong: list[tuple[float, int]] = []  # (when, the total read) for each total that was off

    def add(self, at: float, ok: bool, latency: float, code: str | None = None, part: int | None = None) -> None:
        """A statement finished at ``at`` after ``latency`` seconds (a timeout finishes when given up)."""
        self.seconds.setdefault(int(at), Second()).add(ok, code, latency, part, at)
        if ok:
            if at - self.last_ok >= MIN_GAP:
                self._gap(Gap(self.last_ok, at))
            self.last_ok = max(self.last_ok, at)

    def total(self, at: float, read: int, expected: int) -> None:
        """The bank's total, read at ``at``: any other value than the expected one is kept."""
        self.totals_checked += 1
        if read != expected and len(self.totals_wrong) < 16:
            self.totals_wrong.append((at, read))

    def _gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        if len(self.gaps) > MAX_GAPS:
            self.gaps.remove(min(self.gaps, key=lambda g: g.seconds))

    def open_gap(self, now: float) -> Gap | None:
        """The gap still open at ``now``, if nothing has succeeded for a while."""
        return Gap(self.last_ok, now) if now - self.last_ok >= MIN_GAP else None


@dataclass(frozen=True)
class Budget:
    """The steady-state hypothesis: what the database's users may feel while a fault lasts."""

    max_unavailable_seconds: float
    min_throughput_share: float
    max_statement_seconds: float | None  # on the rows the broken store did not lead; None: not checked
    serve_again_seconds: float  # from the injection until users are served again


@dataclass(frozen=True)
class Impact:
    """What TiDB's clients felt: the numbers behind the status's ``impact`` block. Seconds from the start."""

    baseline_throughput: float | None  # successful statements per second, median over the baseline
    baseline_p99: float | None
    lowest_share: float | None  # the worst SHARE_WINDOW seconds' throughput after the injection, against baseline
    worst_p99: float | None
    failures: dict[str, int]  # error code (or "timeout") -> count, after the injection
    statements: int  # finished after the injection
    longest_unavailable: float  # the longest stretch with no successful statement after the injection
    unavailable_from: float | None
    first_failure: float | None  # the first failed or timed-out statement after the injection
    last_failure: float | None
    unserved_from: float | None  # the first second after the injection that broke the budget's throughput or p99
    served_again: float | None  # from here throughput and p99 held the budget for the stability window
    slowest_statement: float
    affected: tuple[int, int]  # (ok, failed) on the rows the broken store led, after the injection
    others: tuple[int, int]  # (ok, failed) on every other row
    slowest_affected: float  # the longest statement on the rows the broken store led, and on the others
    slowest_others: float
    bank_total_held: bool | None  # None: never read
    slowest_others_part: int | None = None  # the part of the table that statement was on


def _baseline(tally: Tally, start: float, end: float) -> tuple[float | None, float | None]:
    secs = [tally.seconds.get(s, Second()) for s in range(math.ceil(start), int(end))]
    if not secs:
        return None, None
    through = sorted(s.ok for s in secs)
    hist = [sum(col) for col in zip(*(s.hist for s in secs), strict=True)]
    return float(through[len(through) // 2]), percentile(hist, 0.99)


def _through(tally: Tally, s: int, span: int = SMOOTH) -> float:
    """Successful statements a second over the ``span`` seconds up to ``s``: one second holds 20 statements at
    the default rate, too few for a share of it to mean anything (seen on kind: 45% in one second of a
    fault that cost a third of the rows)."""
    seconds = range(max(0, s - span + 1), s + 1)  # never before the canary's first second
    return sum(tally.seconds.get(t, Second()).ok for t in seconds) / max(1, len(seconds))


def _good(tally: Tally, s: int, base: float, budget: Budget) -> bool:
    p99 = percentile(tally.seconds.get(s, Second()).hist, 0.99)
    slow = budget.max_statement_seconds is not None and p99 is not None and p99 > budget.max_statement_seconds
    return _through(tally, s) >= budget.min_throughput_share * base and not slow


def _unserved(tally: Tally, since: int, until: int, base: float, budget: Budget) -> int | None:
    return next((s for s in range(since, until) if not _good(tally, s, base, budget)), None)


def _served_again(tally: Tally, since: int, until: int, base: float, budget: Budget, window: int) -> float | None:
    """The start of the first run of ``window`` good seconds from ``since``."""
    run_start: int | None = None
    for s in range(since, until):
        if _good(tally, s, base, budget):
            run_start = s if run_start is None else run_start
            if s - run_start + 1 >= window:
                return float(run_start)
        else:
            run_start = None
    return None


def _by_part(tally: Tally, since: int, until: int) -> dict[int, tuple[int, int]]:
    """(ok, failed) statements per part of the table, over the seconds from ``since`` to before ``until``."""
    out: dict[int, tuple[int, int]] = {}
    for s in range(since, until):
        for part, (ok, bad) in tally.seconds.get(s, Second()).parts.items():
            had = out.get(part, (0, 0))
            out[part] = (had[0] + ok, had[1] + bad)
    return out


def failures_between(tally: Tally, since: int, until: int) -> dict[str, int]:
    """Failed statements by code, over the seconds from ``since`` to before ``until``."""
    out: dict[str, int] = {}
    for s in range(since, until):
        for code, n in tally.seconds.get(s, Second()).failed.items():
            out[code] = out.get(code, 0) + n
    return out


def _split(tally: Tally, since: int, until: int, led: Iterable[int]) -> tuple[tuple[int, int], tuple[int, int]]:
    led, parts = set(led), _by_part(tally, since, until)
    mine = [c for part, c in parts.items() if part in led]
    rest = [c for part, c in parts.items() if part not in led]
    return (sum(c[0] for c in mine), sum(c[1] for c in mine)), (sum(c[0] for c in rest), sum(c[1] for c in rest))


def _slowest(tally: Tally, since: int, until: int, led: Iterable[int]) -> tuple[float, float, int | None]:
    """The longest statement on the parts in ``led``, and on the others, and the part that one was on."""
    led, mine, rest, where = set(led), 0.0, 0.0, None
    for s in range(since, until):
        for part, took in tally.seconds.get(s, Second()).part_slowest.items():
            if part in led:
                mine = max(mine, took)
            elif took > rest:
                rest, where = took, part
    return mine, rest, where


def impact(
    tally: Tally,
    *,
    baseline: tuple[float, float],
    injected: float,
    now: float,
    budget: Budget,
    window: int,
    led: Iterable[int] = (),
) -> Impact:
    """The tally read from ``injected`` to ``now``; ``led`` are the parts the broken store led."""
    base, base_p99 = _baseline(tally, *baseline)
    since, until = int(injected), int(now)
    after = [tally.seconds.get(s, Second()) for s in range(since, until)]
    failures = failures_between(tally, since, until)
    bad = [s for s in range(since, until) if tally.seconds.get(s, Second()).bad]
    gaps = [g for g in [*tally.gaps, tally.open_gap(now)] if g is not None and g.end > injected]
    gap = max(gaps, key=lambda g: g.seconds, default=None)
    p99s = [p for p in (percentile(s.hist, 0.99) for s in after) if p is not None]
    led = tuple(led)
    affected, others = _split(tally, since, until, led)
    slowest_affected, slowest_others, slowest_others_part = _slowest(tally, since, until, led)
    unserved = _unserved(tally, since, until, base, budget) if base else None
    return Impact(
        baseline_throughput=base,
        baseline_p99=base_p99,
        lowest_share=(min(_through(tally, s, SHARE_WINDOW) for s in range(since, until)) / base)
        if after and base else None,
        worst_p99=max(p99s, default=None),
        failures=failures,
        statements=sum(s.ok + s.bad for s in after),
        longest_unavailable=round(gap.seconds, 1) if gap else 0.0,
        unavailable_from=gap.start if gap else None,
        first_failure=tally.seconds[bad[0]].first_bad if bad else None,
        last_failure=tally.seconds[bad[-1]].last_bad if bad else None,
        unserved_from=None if unserved is None else float(unserved),
        served_again=_served_again(tally, unserved, until, base, budget, window)
        if unserved is not None and base
        else None,
        slowest_statement=max((s.slowest for s in after), default=0.0),
        affected=affected,
        others=others,
        slowest_affected=slowest_affected,
        slowest_others=slowest_others,
        slowest_others_part=slowest_others_part,
        bank_total_held=(not tally.totals_wrong) if tally.totals_checked else None,
    )


def breaches(i: Impact, budget: Budget, *, injected: float, settled: bool,
             where: Callable[[int], str] | None = None) -> list[str]:
    """What broke the budget, in words. ``settled``: the demo is over, so a user never served again breaches.
    ``where`` says which rows a part of the table is, and who led them, for the slow statement's words."""
    out = []
    if i.longest_unavailable > budget.max_unavailable_seconds:
        out.append(
            f"no statement succeeded for {i.longest_unavailable:.1f} s (budget {budget.max_unavailable_seconds:g} s)"
        )
    if i.lowest_share is not None and i.lowest_share < budget.min_throughput_share:
        out.append(f"throughput fell to {i.lowest_share:.0%} of baseline (budget {budget.min_throughput_share:.0%})")
    if budget.max_statement_seconds is not None and i.slowest_others > budget.max_statement_seconds:
        rows = f" ({where(i.slowest_others_part)})" if where and i.slowest_others_part is not None else ""
        out.append(f"a statement on rows the broken store did not lead{rows} took {i.slowest_others:.1f} s"
                   f" (budget {budget.max_statement_seconds:g} s)")
    if i.served_again is not None and i.served_again - injected > budget.serve_again_seconds:
        out.append(
            f"users were served again {i.served_again - injected:.0f} s after the injection"
            f" (budget {budget.serve_again_seconds:g} s)"
        )
    elif i.served_again is None and settled and i.unserved_from is not None:
        out.append("users were not served again within the budget before the demo ended")
    return out


def baseline_refusal(tally: Tally, start: float, end: float, rate: float, budget: Budget) -> str | None:
    """Why the cluster does not meet its own baseline (so nothing may be injected), or None."""
    secs = [tally.seconds.get(s, Second()) for s in range(math.ceil(start), int(end))]
    if not secs:
        return "the canary has no full second of baseline yet"
    failed = failures_between(tally, math.ceil(start), int(end))
    if failed:
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(failed.items()))
        return f"statements failed before any fault was injected ({codes})"
    through = sorted(s.ok for s in secs)[len(secs) // 2]
    if through < budget.min_throughput_share * rate:
        return (
            f"the cluster served {through} statements a second before any fault,"
            f" below {budget.min_throughput_share:.0%} of the canary's rate {rate:g}"
        )
    slowest = max(s.slowest for s in secs)
    if budget.max_statement_seconds is not None and slowest > budget.max_statement_seconds:
        return f"a statement took {slowest:.1f} s before any fault (budget {budget.max_statement_seconds:g} s)"
    if tally.totals_wrong:
        return f"the bank's total was {tally.totals_wrong[0][1]} before any fault, not what the canary wrote"
    return None


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def to_status(i: Impact, said: Sequence[str], *, epoch0: float, injected: float, share: float | None,
              note: str = "", ranges: Sequence[tuple[int, int]] | None = None) -> ImpactStatus:
    """The impact as the status shows it: canary seconds made times (``epoch0`` is the canary's 0)."""
    return ImpactStatus(
        baseline_throughput=i.baseline_throughput, baseline_p99_seconds=_r(i.baseline_p99),
        lowest_throughput_share=_r(i.lowest_share), worst_p99_seconds=_r(i.worst_p99),
        slowest_statement_seconds=_r(i.slowest_statement), statements=i.statements, failures=dict(i.failures),
        longest_unavailable_seconds=i.longest_unavailable,
        unavailable_from=iso(epoch0 + i.unavailable_from) if i.unavailable_from is not None else None,
        served_again_at=iso(epoch0 + i.served_again) if i.served_again is not None else None,
        served_again_seconds=_r(i.served_again - injected, 1) if i.served_again is not None else None,
        affected_rows_share=_r(share), affected_ranges=row_ranges(ranges),
        affected_rows=RowsOutcome(ok=i.affected[0], failed=i.affected[1], slowest_seconds=_r(i.slowest_affected)),
        other_rows=RowsOutcome(ok=i.others[0], failed=i.others[1], slowest_seconds=_r(i.slowest_others)),
        bank_total_held=i.bank_total_held,
        budget_breaches=[b[:200] for b in said[:8]], note=note[:300])


def row_ranges(ranges: Sequence[tuple[int, int]] | None) -> list[RowRange] | None:
    """The rows the broken store led, as the status keeps them (bounded as the status is)."""
    return None if ranges is None else [RowRange(first=a, end=b) for a, b in ranges[:64]]


def sighting(i: Impact, *, epoch0: float, injected: float) -> ObserverSight:
    """TiDB's clients as an observer: their first failed or timed-out statement, and their last."""
    o = ObserverSight(observer="tidb-clients")
    if i.first_failure is None:
        return o
    codes = ", ".join(f"{code} x{n}" for code, n in sorted(i.failures.items(), key=lambda kv: -kv[1])[:3])
    return o.model_copy(update={
        "saw_fault_at": iso(epoch0 + i.first_failure), "saw_fault_seconds": round(i.first_failure - injected, 1),
        "what": f"canary statements failed ({codes})"[:200],
        "saw_end_at": iso(epoch0 + i.last_failure) if i.last_failure is not None else None,
        "saw_end_seconds": round(i.last_failure - injected, 1) if i.last_failure is not None else None,
    })


def by_leader(tally: Tally, since: float, until: float, leaders: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(ok, failed) statements from ``since`` to ``until`` on the rows each store led (``leaders``: part -> store);
    every store alike, so what the diagnosis reads names no target."""
    out: dict[str, tuple[int, int]] = {}
    for part, (ok, bad) in _by_part(tally, int(since), int(until) + 1).items():
        if 0 <= part < len(leaders):
            had = out.get(leaders[part], (0, 0))
            out[leaders[part]] = (had[0] + ok, had[1] + bad)
    return dict(sorted(out.items()))

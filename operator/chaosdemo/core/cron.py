"""Cron schedules of five fields (minute hour day-of-month month day-of-week), in UTC (pure).

As cron and Kubernetes' CronJob read them: ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists;
day-of-week 0 to 7 with both 0 and 7 Sunday; when both day fields are restricted a day matching either fires.
The next time is found a day at a time, so a schedule that never fires ("0 0 31 2 *") is known in bounded work.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["Cron", "parse"]

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
HORIZON_DAYS = 4 * 366 + 1  # every day of the month and weekday combination comes round within four years


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 Sunday .. 6 Saturday
    any_day: bool  # day-of-month was *
    any_weekday: bool  # day-of-week was *

    def _day(self, d: dt.date) -> bool:
        if d.month not in self.months:
            return False
        dom, dow = d.day in self.days, (d.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def next_after(self, after: float) -> float | None:
        """The first time this fires strictly after ``after`` (epoch seconds), or None if it never does."""
        start = dt.datetime.fromtimestamp(after, tz=dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        for n in range(HORIZON_DAYS):
            d = day + dt.timedelta(days=n)
            if not self._day(d):
                continue
            for h in sorted(self.hours):
                for m in sorted(self.minutes):
                    t = dt.datetime(d.year, d.month, d.day, h, m, tzinfo=dt.UTC)
                    if t >= start:
                        return t.timestamp()
        return None


def _field(text: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"a step of {step} in {text!r}")
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a, b = (int(x) for x in rng.split("-", 1))
        else:
            a = b = int(rng)
            if step_text:
                b = hi
        if not lo <= a <= b <= hi:
            raise ValueError(f"{part!r} is outside {lo}-{hi}")
        out.update(range(a, b + 1, step))
    return out


def parse(expr: str) -> Cron:
    """A five-field cron schedule; ValueError says what is wrong with it."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a cron schedule has five fields (minute hour day month weekday), not {len(fields)}")
    try:
        sets = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _BOUNDS, strict=True)]
    except ValueError as e:
        raise ValueError(f"cron schedule {expr!r}: {e}") from None
    return Cron(frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]), frozenset(sets[3]),
                frozenset(d % 7 for d in sets[4]), fields[2] == "*", fields[4] == "*")

"""Timestamps as the status writes them: RFC 3339, UTC, millisecond precision."""

from __future__ import annotations

import datetime as dt

__all__ = ["iso", "parse_iso", "seconds_between"]


def iso(epoch: float) -> str:
    t = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def seconds_between(start: str, end: str) -> float:
    return round(parse_iso(end) - parse_iso(start), 3)

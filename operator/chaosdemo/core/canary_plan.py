"""The SQL canary's statements and its table's layout (pure).

Every statement is fixed text with integers formatted in: nothing from the spec or the cluster reaches
SQL but the database name, which is made here from the demo's uid and checked against one pattern. The
layout is TiDB's own answer to ``SHOW TABLE ... REGIONS`` read into which store leads which rows, so a
demo can say how much of the canary a store's loss cost.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BALANCE",
    "Layout",
    "Plan",
    "credentials",
    "database_for",
    "parse_regions",
]

BALANCE = 100  # each account's opening balance: the bank's total is accounts * BALANCE, always
DATABASE = re.compile(r"^chaosdemo_canary_[a-z0-9]{1,32}$")
_HANDLE = re.compile(r"^t_(\d+)_r_(-?\d+)$")
_TABLE = re.compile(r"^t_(\d+)_")


MAX_SECRET_VALUE = 256  # bytes of a user name or password a canary Secret may hold
_USER = re.compile(r"^[A-Za-z0-9_.@%-]{1,32}$")  # TiDB's user names are at most 32 characters


def credentials(name: str, data: dict[str, Any] | None) -> tuple[str, str]:
    """The canary's user and password from a Secret's ``data`` (base64 values): ``user`` (root when it has
    none) and ``password``. Raises ValueError saying what is wrong, never what the values are."""
    out = {}
    for key in ("user", "password"):
        raw = (data or {}).get(key)
        if raw is None:
            out[key] = ""
            continue
        try:
            value = base64.b64decode(str(raw), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"Secret {name}'s {key} is not base64") from None
        if len(value) > MAX_SECRET_VALUE:
            raise ValueError(f"Secret {name}'s {key} is longer than {MAX_SECRET_VALUE} bytes")
        try:
            out[key] = value.decode()
        except UnicodeDecodeError:
            raise ValueError(f"Secret {name}'s {key} is not UTF-8") from None
    user = out["user"] or "root"
    if not _USER.match(user):
        raise ValueError(f"Secret {name}'s user is not a TiDB user name (letters, digits, _.@%-, at most 32)")
    if "password" not in (data or {}):
        raise ValueError(f"Secret {name} has no password key (the canary reads user and password)")
    return user, out["password"]


def database_for(uid: str) -> str:
    """The canary's database for one demo: ``chaosdemo_canary_`` and the uid's letters and digits."""
    name = "chaosdemo_canary_" + re.sub(r"[^a-z0-9]", "", uid.lower())[:32]
    if not DATABASE.match(name):
        raise ValueError(f"no canary database can be named from uid {uid!r}")
    return name


@dataclass(frozen=True)
class Plan:
    """The canary's SQL for one database and table size."""

    db: str
    accounts: int

    def __post_init__(self) -> None:
        if not DATABASE.match(self.db) or not 1 <= self.accounts <= 100_000:
            raise ValueError(f"not a canary database or size: {self.db!r}, {self.accounts}")

    @property
    def total(self) -> int:
        return self.accounts * BALANCE

    def exists(self) -> str:
        return f"SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME = '{self.db}'"

    def owner(self) -> str:
        return f"SELECT uid FROM {self.db}.canary_owner"

    def create(self, uid: str, parts: int) -> list[list[str]]:
        """What makes the canary's database, in steps (each one round trip)."""
        if not re.fullmatch(r"[a-z0-9-]{1,64}", uid):
            raise ValueError(f"not a uid: {uid!r}")
        rows = ", ".join(f"({i}, {BALANCE})" for i in range(self.accounts))
        return [
            [f"CREATE DATABASE {self.db}"],
            [f"CREATE TABLE {self.db}.canary_owner (uid VARCHAR(64) PRIMARY KEY)",
             f"INSERT INTO {self.db}.canary_owner (uid) VALUES ('{uid}')"],
            [f"CREATE TABLE {self.db}.accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, "
             "touched BIGINT NOT NULL DEFAULT 0)"],
            [f"INSERT INTO {self.db}.accounts (id, balance) VALUES {rows}"],
            [f"SPLIT TABLE {self.db}.accounts BETWEEN (0) AND ({self.accounts}) REGIONS {max(1, parts)}"],
        ]

    def regions(self) -> str:
        return f"SHOW TABLE {self.db}.accounts REGIONS"

    def read(self, row: int) -> list[str]:
        return [f"SELECT balance FROM {self.db}.accounts WHERE id = {int(row)}"]

    def write(self, row: int) -> list[str]:
        return [f"UPDATE {self.db}.accounts SET touched = touched + 1 WHERE id = {int(row)}"]

    def transfer(self, src: int, dst: int) -> list[str]:
        return ["BEGIN",
                f"UPDATE {self.db}.accounts SET balance = balance - 1 WHERE id = {int(src)}",
                f"UPDATE {self.db}.accounts SET balance = balance + 1 WHERE id = {int(dst)}",
                "COMMIT"]

    def sum(self) -> list[str]:
        return [f"SELECT SUM(balance) FROM {self.db}.accounts"]

    def drop(self) -> str:
        return f"DROP DATABASE IF EXISTS {self.db}"


@dataclass(frozen=True)
class Layout:
    """Which store leads which rows: part ``i`` is rows ``starts[i]`` up to the next start."""

    starts: tuple[int, ...]
    leaders: tuple[str, ...]  # PD store id of each part's leader

    def part_of(self, row: int) -> int:
        return max(0, bisect.bisect_right(self.starts, row) - 1)

    def rows_of(self, part: int, accounts: int) -> range:
        end = self.starts[part + 1] if part + 1 < len(self.starts) else accounts
        return range(max(0, self.starts[part]), min(end, accounts))

    def led_by(self, store: str) -> list[int]:
        return [i for i, leader in enumerate(self.leaders) if leader == store]

    def share_led_by(self, store: str, accounts: int) -> float:
        return sum(len(self.rows_of(i, accounts)) for i in self.led_by(store)) / accounts

    def ranges_led_by(self, store: str, accounts: int) -> list[tuple[int, int]]:
        """The rows ``store`` leads, as (first, end) ranges: what a restarted operator reads back."""
        return [(r.start, r.stop) for r in (self.rows_of(i, accounts) for i in self.led_by(store)) if len(r)]

    def parts_within(self, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """The parts whose first row lies in one of ``ranges`` (recorded on an earlier layout: TiDB may have
        split a region since, and each piece of a led region was led too)."""
        return [i for i, first in enumerate(self.starts) if any(a <= first < b for a, b in ranges)]


def parse_regions(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Layout:
    """``SHOW TABLE t REGIONS`` read: each region's first row (its START_KEY ``t_<table>_r_<handle>``;
    a region that starts before the table's rows starts at row 0) and its LEADER_STORE_ID."""
    names = [c.upper() for c in columns]
    start, leader = names.index("START_KEY"), names.index("LEADER_STORE_ID")
    # Every region listed overlaps the table's keys, so none starts after them: the table is the highest id.
    tables = [int(m.group(1)) for row in rows if (m := _TABLE.match(str(row[start])))]
    table = str(max(tables)) if tables else None
    parts = []
    for row in rows:
        m = _HANDLE.match(str(row[start]))
        first = int(m.group(2)) if m and m.group(1) == table else -(2**63)
        parts.append((max(first, 0) if first > -(2**63) else 0, str(row[leader])))
    parts.sort()
    merged: list[tuple[int, str]] = []
    for first, who in parts:  # two regions starting at or before row 0: the later one holds row 0
        if merged and merged[-1][0] == first:
            merged[-1] = (first, who)
        else:
            merged.append((first, who))
    if not merged:
        raise ValueError("TiDB listed no region for the canary's table")
    return Layout(tuple(f for f, _ in merged), tuple(w for _, w in merged))

"""What the operator must still undo, as it records it for itself, and when nobody else will (pure).

A fault that is held and then undone (node-kill, process-pause, network-partition) is written to the
operator's ledger before it is injected, with when its undo is due, and cleared once undone. The operator
undoes an entry itself, at startup and periodically, once nobody else will: its demo is gone, ended, or
another demo of the same name, or its undo is overdue whatever the demo says (a demo's status and kopf's
annotations are written by whoever may patch the demo, so neither may keep a fault in place). Each entry
is undone on its own, node-kill first: one that fails does not hold back the others.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from chaosdemo.api.conditions import TERMINAL
from chaosdemo.api.models import FaultAction

__all__ = ["OVERDUE_GRACE_SECONDS", "UndoEntry", "in_order", "ledger_key", "orphaned", "overdue"]

# How long past its due time the demo's own run has to undo a fault before the reconciler does it anyway.
OVERDUE_GRACE_SECONDS = 60.0

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KEY = re.compile(r"[^-._a-zA-Z0-9]")


def ledger_key(demo: str) -> str:
    """The ConfigMap key of a demo's entry (``namespace/name/uid``), one per demo."""
    return _KEY.sub("_", demo)[:253]


@dataclass(frozen=True)
class UndoEntry:
    action: str
    demo: str  # namespace/name/uid of the ChaosDemo that injected it
    cluster_ns: str
    pod: str
    pod_uid: str
    node: str
    since: str  # when it was recorded, before the injection
    due: str = ""  # when its undo is due (since + the fault's hold); "" in entries written before it was kept

    @property
    def key(self) -> str:
        return ledger_key(self.demo)

    def text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> UndoEntry | None:
        """The entry, or None when the text is not one the operator wrote (never acted on)."""
        try:
            raw = json.loads(text)
            entry = cls(**{k: str(raw[k]) for k in cls.__dataclass_fields__ if k != "due"},
                        due=str(raw.get("due", "")))
            if entry.due:
                _seconds(entry.due)
        except (ValueError, TypeError, KeyError):
            return None
        names = (entry.node, entry.pod, entry.cluster_ns)
        if (entry.action not in get_args(FaultAction) or entry.demo.count("/") != 2
                or not all(_NAME.match(n) for n in names)):
            return None
        return entry


def _seconds(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def overdue(entry: UndoEntry, now: float, grace: float = OVERDUE_GRACE_SECONDS) -> bool:
    """Its undo was due more than ``grace`` seconds ago: whoever should have undone it has not."""
    return bool(entry.due) and now > _seconds(entry.due) + grace


def in_order(entries: list[UndoEntry]) -> list[UndoEntry]:
    """node-kill first (a node down takes every pod on it), then by due time: the order the reconciler undoes."""
    return sorted(entries, key=lambda e: (e.action != "node-kill", e.due or e.since))


def orphaned(entry: UndoEntry, demo: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether nobody but the operator's own reconciliation will undo ``entry``.

    The demo's run undoes it while the demo runs, and its deletion handler once it is being deleted; a demo
    that is gone (its finalizer removed by hand), ended, or replaced by another of the same name will not.
    Past its due time and the grace, neither is waited for: a forged kopf annotation can keep a deletion
    handler from ever running, and a patched status can keep a run from resuming.
    """
    if demo is None or (now is not None and overdue(entry, now)):
        return True
    meta = demo.get("metadata") or {}
    if entry.demo.rsplit("/", 1)[-1] != str(meta.get("uid", "")):
        return True
    if meta.get("deletionTimestamp"):
        return False
    return (demo.get("status") or {}).get("phase") in TERMINAL

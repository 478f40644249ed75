"""What the operator must still undo, as it records it for itself, and when nobody else will (pure).

A fault that is held and then undone (node-kill) is written to the operator's ledger before it is
injected and cleared once undone. An entry whose demo is gone, or ended, or is another demo of the
same name, is orphaned: the operator undoes it itself, at startup and periodically.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, get_args

from chaosdemo.api.conditions import TERMINAL
from chaosdemo.api.models import FaultAction

__all__ = ["UndoEntry", "ledger_key", "orphaned"]

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
            entry = cls(**{k: str(raw[k]) for k in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError):
            return None
        names = (entry.node, entry.pod, entry.cluster_ns)
        if (entry.action not in get_args(FaultAction) or entry.demo.count("/") != 2
                or not all(_NAME.match(n) for n in names)):
            return None
        return entry


def orphaned(entry: UndoEntry, demo: dict[str, Any] | None) -> bool:
    """Whether nobody but the operator's own reconciliation will undo ``entry``.

    The demo's run undoes it while the demo runs, and its deletion handler once it is being deleted; a demo
    that is gone (its finalizer removed by hand), ended, or replaced by another of the same name will not.
    """
    if demo is None:
        return True
    meta = demo.get("metadata") or {}
    if entry.demo.rsplit("/", 1)[-1] != str(meta.get("uid", "")):
        return True
    if meta.get("deletionTimestamp"):
        return False
    return (demo.get("status") or {}).get("phase") in TERMINAL

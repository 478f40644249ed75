"""The operator's ledger of faults to undo, as a run writes it: recorded before the injection, cleared once undone.
The reconciler (``service/reconciler.py``) undoes what a run could not, so a node is started again even if its
demo is gone.

The ledger lives in the operator's own namespace (``Settings.leader_namespace``), where only the
operator may write it; unlike a demo's status, it is the operator's own word.
"""

from __future__ import annotations

import logging

from chaosdemo.api.timestamps import iso
from chaosdemo.core.undo import UndoEntry, ledger_key
from chaosdemo.run.demo import Demo
from chaosdemo.run.deps import Deps
from chaosdemo.run.faults import Fault

__all__ = ["enter", "entry_for", "forget"]

log = logging.getLogger(__name__)


def entry_for(demo: Demo, action: str, at: float, hold: float) -> UndoEntry:
    t = demo.target
    return UndoEntry(action=action, demo=demo.holder, cluster_ns=demo.cluster_ns, pod=t.pod, pod_uid=t.pod_uid,
                     node=t.node, since=iso(at), due=iso(at + hold))


async def enter(deps: Deps, demo: Demo, fault: Fault) -> None:
    """Before a fault that must be undone is injected (nothing for one that needs no undo)."""
    if fault.undo_after is None:
        return
    entry = entry_for(demo, fault.action, demo.rec.clock(), fault.undo_after)
    await deps.kube.ledger.put(deps.settings.leader_namespace, entry.key, entry.text())


async def forget(deps: Deps, holder: str) -> None:
    """Once the fault is undone (or was never injected)."""
    await deps.kube.ledger.drop(deps.settings.leader_namespace, ledger_key(holder))

"""The operator's ledger of faults to undo: recorded before the injection, cleared once undone, and
reconciled at startup and periodically, so a node is started again even if its demo is gone.

The ledger lives in the operator's own namespace (``Settings.leader_namespace``), where only the
operator may write it; unlike a demo's status, it is the operator's own word.
"""

from __future__ import annotations

import asyncio
import logging

from chaosdemo.api.errors import ChaosDemoError
from chaosdemo.api.models import FaultSpec, TargetStatus
from chaosdemo.core.undo import UndoEntry, ledger_key, orphaned
from chaosdemo.run.demo import Demo
from chaosdemo.run.deps import Deps
from chaosdemo.run.faults import Fault

__all__ = ["forget", "keep_undoing", "reconcile", "record"]

log = logging.getLogger(__name__)


def entry_for(demo: Demo, action: str, at: str) -> UndoEntry:
    t = demo.target
    return UndoEntry(action=action, demo=demo.holder, cluster_ns=demo.cluster_ns, pod=t.pod, pod_uid=t.pod_uid,
                     node=t.node, since=at)


async def record(deps: Deps, demo: Demo, fault: Fault) -> None:
    """Before a fault that must be undone is injected (nothing for one that needs no undo)."""
    if fault.undo_after is None:
        return
    entry = entry_for(demo, fault.action, demo.rec.now())
    await deps.kube.ledger.put(deps.settings.leader_namespace, entry.key, entry.text())


async def forget(deps: Deps, holder: str) -> None:
    """Once the fault is undone (or was never injected)."""
    await deps.kube.ledger.drop(deps.settings.leader_namespace, ledger_key(holder))


async def reconcile(deps: Deps) -> list[str]:
    """Undo every orphaned entry of the ledger; what was done, one line each."""
    ns, done = deps.settings.leader_namespace, []
    for key, text in (await deps.kube.ledger.entries(ns)).items():
        entry = UndoEntry.parse(text)
        if entry is None or entry.key != key:
            log.warning("ledger %s: entry %s is not one this operator wrote; left alone", ns, key[:80])
            continue
        demo_ns, demo_name, _ = entry.demo.split("/")
        if not orphaned(entry, await deps.kube.demos.get(demo_ns, demo_name)):
            continue
        fault = deps.faults(FaultSpec.model_validate({"action": entry.action}), deps.kube, deps.docker)
        detail = await fault.undo(entry.cluster_ns, TargetStatus(pod=entry.pod, pod_uid=entry.pod_uid,
                                                                    node=entry.node))
        await deps.kube.ledger.drop(ns, key)
        done.append(f"{entry.action} of ChaosDemo {demo_ns}/{demo_name} (gone or ended): {detail}")
        log.warning("undid %s", done[-1])
    return done


async def keep_undoing(deps: Deps, leading: asyncio.Event | None) -> None:
    """Reconcile the ledger whenever this operator leads: at once, then every ``undo_check_seconds``."""
    while True:
        if leading is not None and not leading.is_set():
            await leading.wait()
        try:
            await reconcile(deps)
        except (ChaosDemoError, OSError) as e:  # the API server or Docker did not answer: next round
            log.warning("could not reconcile the undo ledger: %s", e)
        except Exception:  # never let the loop die: the next round may undo what this one could not
            log.exception("reconciling the undo ledger failed")
        await asyncio.sleep(deps.settings.undo_check_seconds)

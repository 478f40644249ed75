"""The undo reconciler: at startup and periodically, undo every fault of the ledger whose demo will not.

The ledger (``run/undo.py``) lives in the operator's own namespace (``Settings.leader_namespace``), where only
the operator may write it; unlike a demo's status, it is the operator's own word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from chaosdemo.api.errors import ChaosDemoError
from chaosdemo.api.models import FaultSpec, TargetStatus
from chaosdemo.core.undo import UndoEntry, in_order, orphaned, overdue
from chaosdemo.run.deps import Deps
from chaosdemo.service.watchdog import Watchdog

__all__ = ["keep_undoing", "reconcile"]

log = logging.getLogger(__name__)


async def reconcile(deps: Deps) -> list[str]:
    """Undo every entry of the ledger that nobody else will, each on its own, node-kill first; what was done,
    one line each. An entry whose undo fails is logged, counted (``chaosdemo_undo_failures``) and kept for
    the next round; the entries after it are still undone."""
    ns, done = deps.settings.leader_namespace, []
    entries = []
    for key, text in (await deps.kube.ledger.entries(ns)).items():
        entry = UndoEntry.parse(text)
        if entry is None or entry.key != key:
            log.warning("ledger %s: entry %s is not one this operator wrote; left alone", ns, key[:80])
            continue
        entries.append(entry)
    for entry in in_order(entries):
        try:
            line = await _undo_if_orphaned(deps, ns, entry)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - one entry must not hold back the others
            deps.metrics.undo_failed(entry.action)
            log.warning("could not undo %s of ChaosDemo %s (kept for the next round): %s: %s", entry.action,
                        entry.demo, type(e).__name__, e)
            continue
        if line:
            done.append(line)
            log.warning("undid %s", line)
    return done


async def _undo_if_orphaned(deps: Deps, ns: str, entry: UndoEntry) -> str:
    demo_ns, demo_name, _ = entry.demo.split("/")
    demo = await deps.kube.demos.get(demo_ns, demo_name)
    if not orphaned(entry, demo, deps.clock()):
        return ""
    why = "overdue" if demo is not None and overdue(entry, deps.clock()) else "gone or ended"
    fault = deps.faults(FaultSpec.model_validate({"action": entry.action}), deps.kube, deps.docker)
    detail = await fault.undo(entry.cluster_ns, TargetStatus(pod=entry.pod, pod_uid=entry.pod_uid, node=entry.node))
    await deps.kube.ledger.drop(ns, entry.key)
    return f"{entry.action} of ChaosDemo {demo_ns}/{demo_name} ({why}): {detail}"


async def keep_undoing(deps: Deps, leading: asyncio.Event | None, watchdog: Watchdog | None = None) -> None:
    """Whenever this operator leads, at once and then every ``undo_check_seconds``: reconcile the ledger, and
    report the demos it has stopped handling (``watchdog``)."""
    while True:
        if leading is not None and not leading.is_set():
            await leading.wait()
        rounds: list[tuple[str, Callable[[], Awaitable[object]]]] = [("reconcile the undo ledger",
                                                                      lambda: reconcile(deps))]
        if watchdog is not None:
            rounds.append(("look for stuck demos", watchdog.look))
        for what, work in rounds:
            try:
                await work()
            except (ChaosDemoError, OSError) as e:  # the API server or Docker did not answer: next round
                log.warning("could not %s: %s", what, e)
            except Exception:  # never let the loop die: the next round may do what this one could not
                log.exception("could not %s", what)
        await asyncio.sleep(deps.settings.undo_check_seconds)

"""The watchdog: whenever this operator leads, every demo it has stopped handling is reported (``core/watchdog``),
as a Warning Event on the demo (once per demo and reason) and in ``chaosdemo_demos_stuck``."""

from __future__ import annotations

import logging

from chaosdemo.api.errors import ChaosDemoError
from chaosdemo.core.watchdog import stuck
from chaosdemo.run.deps import Deps

__all__ = ["Watchdog"]

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, deps: Deps, finalizer: str, namespaces: tuple[str, ...] = ()) -> None:
        self.deps, self.finalizer = deps, finalizer
        self.namespaces = frozenset(namespaces)  # those the operator serves; none: every namespace
        self.said: set[tuple[str, str]] = set()  # (uid, reason) already posted

    async def look(self) -> list[str]:
        """One round: the stuck demos, one line each; each newly stuck one told on the demo itself."""
        deps, lines = self.deps, []
        now, grace = deps.clock(), deps.settings.stuck_seconds
        for demo in await deps.kube.demos.list_all():
            meta = demo.get("metadata") or {}
            if self.namespaces and meta.get("namespace") not in self.namespaces:
                continue  # another operator's, or nobody's: not ours to report
            why = stuck(demo, now, self.finalizer, grace)
            if not why:
                continue
            lines.append(f"ChaosDemo {meta.get('namespace')}/{meta.get('name')}: {why}")
            key = (str(meta.get("uid", "")), why.split(" for ")[0].split(" by ")[0])
            if key not in self.said:
                self.said.add(key)
                log.warning("%s", lines[-1])
                try:
                    await deps.kube.events.post(demo, "Warning", "Stuck", why)
                except ChaosDemoError as e:  # one Event refused must not keep the others unsaid
                    log.warning("could not post Stuck on ChaosDemo %s/%s: %s", meta.get("namespace"),
                                meta.get("name"), e)
        deps.metrics.stuck.set(len(lines))
        return lines

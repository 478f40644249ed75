"""One ChaosDemoSuite's run: read it and the demos it owns, ask ``core/suite.advance`` for the next move,
create the step's demo it names, prune old runs' demos, save the status; again until the suite is done.

A restarted operator carries on from the status and the demos (their names are fixed by run and step, so a
demo created just before a crash is found, never made twice). No kopf here: ``edge/handlers.py`` calls
``SuiteRun.run`` from a daemon, and ``let_go`` when the suite is deleted: its demos are deleted then (the
ownerReference is the backstop), and each demo's deletion undoes its fault as any demo's does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from chaosdemo.api.suite import SUITE_KIND, ChaosDemoSuiteSpec, ChaosDemoSuiteStatus
from chaosdemo.api.timestamps import parse_iso
from chaosdemo.core.suite import Advance, Said, advance, demo_manifest, not_created, run_of
from chaosdemo.run.deps import Deps

__all__ = ["POLL_SECONDS", "SuiteRun", "let_go"]

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0  # how often a running step's demo is read again
LONG_WAIT = 60.0  # the longest single sleep before a scheduled run (the suite is read again after it)


class SuiteRun:
    def __init__(self, deps: Deps, namespace: str, name: str) -> None:
        self.deps, self.namespace, self.name = deps, namespace, name

    async def run(self) -> None:
        while True:
            adv = await self.step()
            if adv is None or adv.done:
                return
            if adv.create is not None:
                continue  # read again at once: the new demo goes into the status
            wait = POLL_SECONDS if adv.wake_at is None else min(LONG_WAIT, adv.wake_at - self.deps.clock())
            await asyncio.sleep(max(0.1, wait))

    async def step(self) -> Advance | None:
        """One move; None when the suite is gone (or going) or cannot be read as a suite."""
        suites = self.deps.kube.suites
        body = await suites.get(self.namespace, self.name)
        meta = (body or {}).get("metadata") or {}
        if body is None or meta.get("deletionTimestamp"):
            return None
        try:
            spec = ChaosDemoSuiteSpec.model_validate(body.get("spec") or {})
            status = ChaosDemoSuiteStatus.model_validate(body.get("status") or {})
        except ValidationError as e:  # the API server enforces the schema: only a status written past it
            log.error("ChaosDemoSuite %s/%s cannot be read: %s", self.namespace, self.name, e)
            return None
        owned = {str(d["metadata"]["name"]): d for d in
                 await suites.demos_of(self.namespace, self.name, str(meta.get("uid", "")))}
        now = self.deps.clock()
        moved = adv = advance(spec, status, owned, suite=self.name, now=now, created=_created(meta, now))
        said = list(adv.said)
        if adv.prune_below:
            await self._prune(owned, adv.prune_below)
        if adv.create is not None:
            adv = await self._create(body, spec, adv, said)
        if moved.ended:
            # The run's end is told first: once the status holds the verdict, kopf stops this daemon (its `when`),
            # as a demo's end is counted before its terminal status. A save that fails after it tells it again.
            await self._tell(body, said)
            self.deps.metrics.suite_ended(moved.ended, moved.status.totals.false_alarms)
            await suites.patch_status(self.namespace, self.name, _dump(adv.status))
        else:
            # Told once the status holds it: a status that could not be saved is moved again, never told twice.
            await suites.patch_status(self.namespace, self.name, _dump(adv.status))
            await self._tell(body, said)
        return adv

    async def _tell(self, body: dict[str, Any], said: list[Said]) -> None:
        for type_, reason, message in said:
            log.info("ChaosDemoSuite %s/%s: %s", self.namespace, self.name, message)
            await self.deps.kube.events.post(body, type_, reason, message, kind=SUITE_KIND)

    async def _create(self, body: dict[str, Any], spec: ChaosDemoSuiteSpec, adv: Advance,
                      said: list[Said]) -> Advance:
        """Create the step's demo; what to tell of it goes to ``said``, told once the status is saved."""
        assert adv.create is not None
        manifest = demo_manifest(body, spec, adv.status.run, adv.create)
        ok, why = await self.deps.kube.suites.create_demo(self.namespace, manifest)
        name = manifest["metadata"]["name"]
        step = spec.steps[adv.create]
        if ok:
            said.append(("Normal", "StepStarted", f"step {step.name} ({step.fault.action}): ChaosDemo {name}"))
            return adv
        said.append(("Warning", "StepNotCreated", f"step {step.name}: ChaosDemo {name} was not created: {why}"))
        # A demo of that name that the suite does not own is refused as any other: it is never taken over.
        return Advance(not_created(adv.status, adv.create, why, self.deps.clock()), create=adv.create)

    async def _prune(self, owned: dict[str, dict[str, Any]], below: int) -> None:
        for name in sorted(owned):
            run = run_of(self.name, name)
            if run is not None and run < below:
                log.info("ChaosDemoSuite %s/%s: deleting %s (older than historyLimit)", self.namespace, self.name,
                         name)
                await self.deps.kube.suites.delete_demo(self.namespace, name)


async def let_go(deps: Deps, body: dict[str, Any]) -> list[str]:
    """The suite is being deleted: its demos are deleted now (each one's deletion undoes its fault), not when
    the garbage collector gets to them (it learns a new resource type only at its next discovery, up to 30 s
    after the CRD is installed: seen on the local tier). The ownerReference stays the backstop."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    owned = await deps.kube.suites.demos_of(namespace, name, str(meta.get("uid", "")))
    for demo in owned:
        await deps.kube.suites.delete_demo(namespace, str(demo["metadata"]["name"]))
    return sorted(str(d["metadata"]["name"]) for d in owned)


def _created(meta: dict[str, Any], now: float) -> float:
    try:
        return parse_iso(str(meta["creationTimestamp"]))
    except (KeyError, ValueError):
        return now


def _dump(status: ChaosDemoSuiteStatus) -> dict[str, Any]:
    """The whole status as a merge patch: a field now empty is sent as null, so it is cleared."""
    return status.model_dump(by_alias=True, mode="json")

"""The record of a demo: its status and its Kubernetes events, the only way a run says what it did.

Conditions are set here, the phase is computed from them on every save, and
each stage's story is posted as an event on the ChaosDemo. The report stage
(how a demo ended, and the one-line verdict) is written here too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from chaosdemo.api import conditions as cond
from chaosdemo.api.errors import AbortDemo, FaultUnavailable, TargetError
from chaosdemo.api.models import ChaosDemoStatus, ConditionType, Diagnosis
from chaosdemo.api.timestamps import iso
from chaosdemo.clients.kube import KubeClient
from chaosdemo.core.evidence import clip
from chaosdemo.run.crashpoints import never

__all__ = ["Record", "verdict"]

log = logging.getLogger(__name__)


MAX_MESSAGE = 1024


def verdict(d: Diagnosis | None) -> str:
    """The diagnosis, in the words that end a demo's summary line."""
    if d is None:
        return ""
    match = "matches the injected fault" if d.matches_injected_fault else "does NOT match the injected fault"
    return f"; diagnosis ({d.engine}): {d.fault_class}, {match}"


class Record:
    def __init__(self, kube: KubeClient, body: dict[str, Any], clock: Callable[[], float],
                 crash: Callable[[str], None] = never) -> None:
        meta = body["metadata"]
        self.kube, self.body, self.clock, self.crash = kube, body, clock, crash
        self.namespace, self.name = str(meta.get("namespace", "")), str(meta["name"])
        self.generation = int(meta.get("generation", 1))
        self.status = ChaosDemoStatus.model_validate(body.get("status") or {})
        self._lock = asyncio.Lock()

    def now(self) -> str:
        return iso(self.clock())

    async def save(self) -> None:
        async with self._lock:
            # Messages carry text from PD and the cluster: bounded, so no status grows past what the API
            # server accepts (a refused write would be retried forever).
            self.status.message = clip(self.status.message, MAX_MESSAGE)
            self.status.phase = cond.compute_phase(self.status.conditions)
            self.status.observed_generation = self.generation
            payload = self.status.model_dump(by_alias=True, exclude_none=True, mode="json")
            await self.kube.demos.patch_status(self.namespace, self.name, payload)
        self.crash(self.status.phase)  # a crash point per phase, right after its status is written

    def set(self, type_: ConditionType, status: str, reason: str, message: str) -> None:
        self.status.conditions = cond.set_condition(
            self.status.conditions, type_, status, reason, clip(message, MAX_MESSAGE), self.now(), self.generation
        )

    async def event(self, type_: str, reason: str, message: str) -> None:
        log.info("%s/%s %s: %s", self.namespace, self.name, reason, message)
        await self.kube.events.post(self.body, type_, reason, message)

    async def diagnosed(self, d: Diagnosis) -> None:
        self.status.diagnosis = d
        self.status.diagnosed_at = self.now()
        self.set("Diagnosed", "True", "ClaudeDiagnosed" if d.engine == "claude" else "RulesDiagnosed",
                 d.summary[:300])
        await self.save()
        await self.event(
            "Normal" if d.matches_injected_fault else "Warning", "Diagnosed",
            f"{d.engine}: {d.summary} [{d.fault_class}; "
            f"{'matches' if d.matches_injected_fault else 'does not match'} the injected fault]"
            + (f" (rules engine because {d.fallback_reason})" if d.fallback_reason else ""))

    def aborted(self, e: AbortDemo) -> str:
        """Set the conditions of a demo that ends with nothing injected; the summary message."""
        if isinstance(e, FaultUnavailable):
            self.set("FaultInjected", "False", e.reason, f"nothing was injected: {e.message}")
        else:
            self.set("TargetSelected" if isinstance(e, TargetError) else "PreflightPassed", "False", e.reason,
                     e.message)
            self.set("FaultInjected", "False", "NotInjected", "nothing was injected")
        return f"{e.reason}: {e.message}"

    async def finish(self, ok: bool, reason: str, message: str) -> None:
        """Write the end: kopf stops the daemon as soon as it sees it, so this comes last."""
        self.status.finished_at = self.now()
        self.status.message = message
        self.set("Succeeded", "True" if ok else "False", reason, message)
        await self.event("Normal" if ok else "Warning", cond.compute_phase(self.status.conditions), message)
        await self.save()

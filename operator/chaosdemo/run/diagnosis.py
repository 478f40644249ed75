"""Diagnosis: Claude when it is configured and answers, the rules engine otherwise.

Both engines read the same evidence. The result records which engine spoke
and, when the rules engine stood in, why Claude did not. A diagnosis runs
beside the recovery wait as a ``DiagnosisJob``, which its owner awaits or
cancels on every way out, so no old run can write over a resumed one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from chaosdemo.api.errors import ClaudeUnavailable
from chaosdemo.api.models import Diagnosis, DiagnosisAnswer, Violation
from chaosdemo.api.timestamps import parse_iso
from chaosdemo.clients.kube import KubeClient
from chaosdemo.clients.metrics import Metrics
from chaosdemo.core.evidence import Evidence, build_evidence, evidence_refs
from chaosdemo.core.grading import GroundTruth, grade, unknown_citations
from chaosdemo.core.history import ContainerEvent, PodHistory
from chaosdemo.core.prompt import SYSTEM_PROMPT, build_user_prompt
from chaosdemo.core.rules import diagnose_by_rules
from chaosdemo.core.snapshot import Snapshot

if TYPE_CHECKING:  # the SDK is imported only when a key is set (wiring)
    from chaosdemo.clients.claude import ClaudeDiagnoser

__all__ = ["DiagnosisJob", "collect_evidence", "diagnose"]

log = logging.getLogger(__name__)

EVIDENCE_SECONDS = 10.0  # building one demo's evidence; it takes milliseconds (bounded text, linear patterns)


async def diagnose(
    evidence: Evidence,
    *,
    claude: ClaudeDiagnoser | None,
    model: str,
    truth: GroundTruth,
    metrics: Metrics | None = None,
) -> Diagnosis:
    answer: DiagnosisAnswer
    engine: Literal["claude", "rules"] = "rules"
    fallback = ""
    if claude is None:
        fallback = "no Anthropic API key is configured (ANTHROPIC_API_KEY)"
        answer = diagnose_by_rules(evidence)
        if metrics is not None:
            metrics.fallback("NoAPIKey")
    else:
        try:
            answer = await claude.diagnose(
                model=model, system=SYSTEM_PROMPT, user=build_user_prompt(evidence)
            )
            engine = "claude"
        except ClaudeUnavailable as e:
            log.warning("Claude diagnosis failed (%s); the rules engine answers", e.reason)
            fallback = f"{e.reason}: {e.message}"
            answer = diagnose_by_rules(evidence)
            if metrics is not None:
                metrics.fallback(e.reason)
    known = evidence_refs(evidence)
    matches, grading = grade(answer, truth, known)
    fields = answer.model_dump()
    fields.update(
        confidence=min(max(answer.confidence, 0.0), 1.0),
        evidence=[e[:300] for e in answer.evidence[:10]],
        cited_evidence=[c[:20] for c in answer.cited_evidence[:20]],
        unknown_citations=[c[:20] for c in unknown_citations(answer, known)[:20]],
        recommended_actions=[a[:300] for a in answer.recommended_actions[:10]],
    )
    return Diagnosis(
        **fields,
        engine=engine,
        model=model if engine == "claude" else "",
        fallback_reason=fallback,
        matches_injected_fault=matches,
        grading=grading,
    )


async def collect_evidence(
    kube: KubeClient,
    snapshot: Snapshot,
    *,
    started_at: str,
    violations: Sequence[Violation],
    history: PodHistory,
    container_events: Sequence[ContainerEvent],
    events_limit: int,
    clients: Sequence[tuple[str, int, int]] = (),
    client_failures: dict[str, int] | None = None,
) -> Evidence:
    """The evidence of one demo: what the watch saw, plus the cluster's recent events and tidb-operator's view."""
    recent = await kube.events.newest(snapshot.namespace, snapshot.cluster, since=parse_iso(started_at) - 1,
                                      keep=events_limit)
    tidbcluster = await kube.cluster.get_tidbcluster(snapshot.namespace, snapshot.cluster)
    # Built off the event loop, with a bound: its text comes from the cluster, and the loop serves every demo.
    return await asyncio.wait_for(asyncio.to_thread(
        build_evidence, snapshot, started_at, violations, history, recent, container_events, tidbcluster, clients,
        client_failures),
        EVIDENCE_SECONDS)


class DiagnosisJob:
    """One diagnosis running beside the recovery wait, owned by the watch that started it.

    ``finish`` waits for it up to ``limit`` seconds (then cancels it and calls
    ``on_timeout``); leaving the ``async with`` block any other way cancels it
    and waits until it has stopped.
    """

    def __init__(self, work: Callable[[], Coroutine[Any, Any, None]], limit: float,
                 on_timeout: Callable[[float], Awaitable[None]]) -> None:
        self._work, self.limit, self._on_timeout = work, limit, on_timeout
        self._task: asyncio.Task[None] | None = None
        self._finished = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work())

    async def finish(self) -> None:
        """Wait for it (at most ``limit``); once finished, finishing again does nothing."""
        if self._task is None or self._finished:
            return
        self._finished = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.limit)
        except TimeoutError:
            await self.cancel()
            await self._on_timeout(self.limit)

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            # wait() never raises the task's own CancelledError, so a cancellation of the caller still propagates.
            await asyncio.wait({self._task})

    async def __aenter__(self) -> DiagnosisJob:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.cancel()

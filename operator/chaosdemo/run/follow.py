"""After the injection: look, let the pure step decide, act, until the cluster has recovered and
tidb-operator's status agrees (``core/step.py`` has the three phases: detecting, recovering, agreeing).

Paced once the failure is detected (its time comes from the watch event, not from a look): a look at
most every ``look_interval_seconds``, progress written at most every ``save_interval_seconds``;
detection, an undo and the end are written at once. The diagnosis runs beside it, started at
detection, and never holds it up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from chaosdemo.api.errors import DemoFailed
from chaosdemo.api.models import CONTROL
from chaosdemo.api.timestamps import iso, parse_iso
from chaosdemo.core.journal import Subject, Wakeup, cluster_subject, node_subject
from chaosdemo.core.sightings import advance
from chaosdemo.core.step import (
    Agreed,
    AwaitAgreement,
    Decision,
    Detected,
    Failed,
    FalseAlarm,
    NoOperatorStatus,
    Quiet,
    Recovered,
    UndoNow,
    WatchPlan,
    step,
    watch_from,
)
from chaosdemo.core.story import Agreed as AgreedStory
from chaosdemo.core.story import (
    AwaitingAgreement,
    ControlQuiet,
    DeadlinePassed,
    Diagnosed,
    DiagnosisFailed,
    Looked,
    NoAgreementToWait,
    Undone,
)
from chaosdemo.core.story import Detected as DetectedStory
from chaosdemo.core.story import Recovered as RecoveredStory
from chaosdemo.run import undo
from chaosdemo.run.casebook import log_case
from chaosdemo.run.diagnosis import DiagnosisJob, collect_evidence, diagnose
from chaosdemo.run.faults import ground_truth
from chaosdemo.run.felt import clients_evidence, feel
from chaosdemo.run.state import RunState

__all__ = ["follow", "undo_now"]

log = logging.getLogger(__name__)


def plan_of(rs: RunState) -> WatchPlan:
    st, t = rs.status, rs.demo.spec.timeouts
    assert st.injected_at is not None
    return WatchPlan(injected_at=parse_iso(st.injected_at), detection_seconds=t.detection_seconds,
                     recovery_seconds=t.recovery_seconds, stability_seconds=t.stability_seconds,
                     target=rs.target, undo_after=rs.fault.undo_after, cfg=rs.inv_cfg,
                     control=rs.demo.spec.fault.action == CONTROL)


async def follow(rs: RunState, resumed: bool) -> None:
    """Return once recovered and agreed (the diagnosis finished or given up); raise DemoFailed at a deadline."""
    st, journal, p, s = rs.status, rs.deps.journal, rs.progress, rs.deps.settings
    p.watch = watch_from(st, resumed=resumed, history=p.watch.history)
    rs.observer.watch_nodes([rs.target.node])
    if rs.fault.watches_node_container:
        rs.observer.watch_node_containers(rs.deps.docker, [rs.target.node])
    limit = s.diagnosis_settle_seconds + s.claude_timeout_seconds * (s.claude_max_retries + 1) + 30
    job = DiagnosisJob(lambda: diagnosis(rs), limit, lambda limit: diagnosis_timed_out(rs, limit))
    plan = plan_of(rs)
    if p.watch.detected and st.diagnosis is None and rs.demo.spec.diagnosis.enabled and not plan.control:
        job.start()
    if p.cursor is None:
        p.cursor = journal.cursor()
    async with job:  # cancelled on every way out that does not await it
        if p.watch.recovered_at is not None:  # resumed after recovery was proven
            await _after_recovery(rs, job)
        with journal.wakeup(subjects(rs)) as wake:
            await _loop(rs, plan, wake, job)


async def _loop(rs: RunState, plan: WatchPlan, wake: Wakeup, job: DiagnosisJob) -> None:
    s, p, rec = rs.deps.settings, rs.progress, rs.rec
    look_gap, save_gap = min(s.look_interval_seconds, s.poll_seconds), s.save_interval_seconds
    saved_at, unsaved = time.monotonic(), False
    while True:
        wake.clear()  # an event from here on wakes the next look, even one during this look
        changed, decision = await _look(rs, plan)
        if await _act(rs, decision, job):
            return
        if isinstance(decision, UndoNow | Recovered):
            saved_at, unsaved = time.monotonic(), False
            continue  # look again at once: the undo and the agreement are timed from their own looks
        now = time.monotonic()
        if isinstance(decision, Detected | AwaitAgreement):  # told and saved at once
            saved_at, unsaved = now, False
        else:
            unsaved = unsaved or changed
        if unsaved and (not p.watch.detected or now - saved_at >= save_gap):
            await rec.save()
            saved_at, unsaved = time.monotonic(), False
        wake.watch(subjects(rs))
        poll = s.poll_seconds if p.watch.detected else min(s.poll_seconds, s.detect_poll_seconds)
        timeout = poll if not unsaved else max(0.0, min(poll, saved_at + save_gap - now))
        await wake.wait(timeout, not_before=min(look_gap, timeout) if p.watch.detected else 0.0)


async def _act(rs: RunState, decision: Decision, job: DiagnosisJob) -> bool:
    """Act on the step's decision and tell it; True once the demo may end."""
    rec, spec, metrics = rs.rec, rs.demo.spec, rs.deps.metrics
    if isinstance(decision, UndoNow):
        await undo_now(rs)
    elif isinstance(decision, Failed):
        if not decision.recovered:
            await rec.tell(DeadlinePassed(decision.reason, decision.detected), save=False)
        await job.finish()
        raise DemoFailed(decision.message, reason=decision.reason)
    elif isinstance(decision, FalseAlarm):
        first = decision.breaches[0]
        story = await rec.tell(DetectedStory(first.invariant, first.message, iso(decision.at), diagnosis=False,
                                             control=True))
        metrics.detected(spec.fault.action, first.invariant, story.status.detection_seconds or 0.0)
        raise DemoFailed(f"a no-fault control saw {first.invariant} break {story.status.detection_seconds}s into "
                         f"its window, though nothing was injected: {first.message}", reason="FalseAlarm")
    elif isinstance(decision, Quiet):
        await rec.tell(ControlQuiet(rs.demo.spec.timeouts.detection_seconds))
        return True
    elif isinstance(decision, Detected):
        first = decision.breaches[0]
        story = await rec.tell(DetectedStory(first.invariant, first.message, iso(decision.at),
                                             diagnosis=spec.diagnosis.enabled))
        metrics.detected(spec.fault.action, first.invariant, story.status.detection_seconds or 0.0)
        if spec.diagnosis.enabled:
            job.start()
    elif isinstance(decision, Recovered):
        story = await rec.tell(RecoveredStory(iso(decision.at), spec.timeouts.stability_seconds))
        metrics.recovered(spec.fault.action, story.status.recovery_seconds or 0.0)
        await _after_recovery(rs, job)
    elif isinstance(decision, AwaitAgreement):
        await rec.tell(AwaitingAgreement(decision.shows))
    elif isinstance(decision, Agreed):
        assert rs.status.injected_at is not None
        seconds = decision.at - parse_iso(rs.status.injected_at)
        await rec.tell(AgreedStory(seconds, waited=decision.waited), save=False)
        return True
    elif isinstance(decision, NoOperatorStatus):
        await rec.tell(NoAgreementToWait(), save=False)
        return True
    return False


async def _after_recovery(rs: RunState, job: DiagnosisJob) -> None:
    """Recovered: the diagnosis is finished (or given up), and the fault is surely undone (a no-op if it was)."""
    await job.finish()
    await rs.fault.undo(rs.demo.cluster_ns, rs.target)


async def _look(rs: RunState, plan: WatchPlan) -> tuple[bool, Decision]:
    """One look: the pod events since the last, a snapshot, the step; the status follows the step's state."""
    st, p, journal = rs.status, rs.progress, rs.deps.journal
    assert p.cursor is not None and st.injected_at is not None
    events, p.cursor = journal.pod_events_since(p.cursor, rs.demo.cluster_ns, rs.demo.cluster)
    snap = p.last_snapshot = await rs.observer.snapshot()
    result = step(p.watch, plan, events, snap)
    message = result.state.message if result.state.message != p.watch.message else None
    p.watch = w = result.state
    # New violations are appended; the bounded timeline drops old ones from the front.
    for v in w.violations[len(st.violations) - (w.dropped - st.violations_dropped):]:
        rs.deps.metrics.breach(v.invariant)
    seen = advance(st.observers, snap, rs.target, st.injected_at)
    story = rs.rec.told(Looked(message, w.violations, w.dropped, tuple(seen)))
    said = feel(rs, settled=False)  # the SQL canary's tally, into the status (spec.canary)
    if said and rs.demo.spec.canary.abort_on_breach:
        raise DemoFailed(f"what TiDB's clients felt broke the budget: {'; '.join(said)}; the fault is undone "
                         "at once (spec.canary.abortOnBreach)", reason="BudgetExceeded")
    now = rs.status
    return (result.changed or story.status.observers != st.observers or now.impact != st.impact
            or now.observers != story.status.observers), result.decision


def subjects(rs: RunState) -> list[Subject]:
    """What wakes this demo's look: its cluster's pods and StatefulSet, the nodes it watches."""
    nodes = rs.observer.watched_nodes | rs.observer.node_containers
    return [cluster_subject(rs.demo.cluster_ns, rs.demo.cluster), *(node_subject(n) for n in sorted(nodes))]


async def undo_now(rs: RunState) -> None:
    """Undo the fault now (node-kill: start the node), forget it in the ledger, and tell it."""
    detail = await rs.fault.undo(rs.demo.cluster_ns, rs.target)
    await undo.forget(rs.deps, rs.demo.holder)
    rs.progress.watch = replace(rs.progress.watch, undone=True)
    await rs.rec.tell(Undone(detail, node_level=rs.fault.node_level))


async def diagnosis(rs: RunState) -> None:
    """The diagnosis of this demo, beside the recovery wait: evidence, Claude or the rules, the story."""
    demo, s, p = rs.demo, rs.deps.settings, rs.progress
    try:
        await asyncio.sleep(s.diagnosis_settle_seconds)
        snap = p.last_snapshot or await rs.observer.snapshot()
        clients, client_failures = clients_evidence(rs)
        evidence = await collect_evidence(
            rs.deps.kube, snap, started_at=rs.status.started_at or rs.rec.now(), violations=rs.status.violations,
            history=p.watch.history, container_events=p.watch.containers.events, events_limit=s.events_limit,
            clients=clients, client_failures=client_failures)
        truth = ground_truth(rs.fault, demo.target)
        log_case(rs.deps, demo, evidence, truth)
        model = demo.spec.diagnosis.model if s.may_use(demo.spec.diagnosis.model) else ""
        d = await diagnose(evidence, claude=rs.deps.claude, model=model or s.claude_model,
                           truth=truth, metrics=rs.deps.metrics)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # a diagnosis must never stop the demo
        log.exception("diagnosis failed")
        await rs.rec.tell(DiagnosisFailed("DiagnosisError", f"{type(e).__name__}: {e}"))
        return
    await rs.rec.tell(Diagnosed(d))


async def diagnosis_timed_out(rs: RunState, limit: float) -> None:
    rs.rec.told(DiagnosisFailed("DiagnosisTimeout", f"no diagnosis within {limit:.0f}s"))

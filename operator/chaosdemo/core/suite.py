"""A suite's next move, from its spec, its status and the demos it owns (pure).

``advance`` is the whole of a suite's logic: which run it is in, which step's demo to create next (after the
pause), what each step's demo ended as, the run's totals and verdict, and when the schedule starts the next
run. The run (``run/suite.py``) lists the demos, calls it, creates what it says and saves the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaosdemo.api.conditions import TERMINAL
from chaosdemo.api.models import API_GROUP, API_VERSION, CONTROL, KIND
from chaosdemo.api.suite import (
    RUN_LABEL,
    STEP_LABEL,
    SUITE_KIND,
    SUITE_LABEL,
    ChaosDemoSuiteSpec,
    ChaosDemoSuiteStatus,
    SuiteRunSummary,
    SuiteStep,
    SuiteStepStatus,
    SuiteTotals,
)
from chaosdemo.api.timestamps import iso, parse_iso
from chaosdemo.core import cron

__all__ = ["Advance", "Said", "advance", "demo_manifest", "demo_name", "not_created", "run_of", "step_status", "totals"]

NOT_CREATED = "NotCreated"  # the operator could not create the step's demo (a name taken, a refusal)
DEMO_DELETED = "DemoDeleted"  # the step's demo went away before it ended


Said = tuple[str, str, str]  # an Event's type, reason and message


@dataclass(frozen=True)
class Advance:
    status: ChaosDemoSuiteStatus
    create: int | None = None  # the step whose demo to create now
    prune_below: int = 0  # demos of runs before this one are deleted (historyLimit)
    wake_at: float | None = None  # nothing to do before then (None: when a demo changes, polled)
    done: bool = False  # no schedule and the run ended: nothing more to do, ever
    said: list[Said] = field(default_factory=list)  # what happened, for the log and the suite's Events
    ended: str = ""  # the run's verdict, when it ended at this move (for the metrics)


def demo_name(suite: str, run: int, step: str) -> str:
    return f"{suite}-r{run}-{step}"


def demo_manifest(suite: Mapping[str, Any], spec: ChaosDemoSuiteSpec, run: int, index: int) -> dict[str, Any]:
    """Step ``index`` of run ``run`` as a ChaosDemo the suite owns (deleting the suite deletes it, and the
    demo's own deletion undoes its fault)."""
    meta = suite.get("metadata") or {}
    step = spec.steps[index]
    body = step.model_dump(by_alias=True, exclude={"name"}, exclude_none=True, mode="json")
    body["cluster"] = spec.cluster.model_dump(by_alias=True, exclude_none=True, mode="json")
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND,
        "metadata": {
            "name": demo_name(str(meta.get("name")), run, step.name), "namespace": meta.get("namespace"),
            "labels": {SUITE_LABEL: str(meta.get("name")), RUN_LABEL: str(run), STEP_LABEL: step.name},
            "ownerReferences": [{"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": SUITE_KIND,
                                 "name": meta.get("name"), "uid": meta.get("uid"), "controller": True,
                                 "blockOwnerDeletion": False}],
        },
        "spec": body,
    }


def _succeeded_reason(status: Mapping[str, Any]) -> str:
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Succeeded":
            return str(c.get("reason") or "")[:100]
    return ""


def step_status(step: SuiteStep, demo: Mapping[str, Any] | None, was: SuiteStepStatus | None) -> SuiteStepStatus:
    """What step ``step`` is, read from its demo (``was``: what the status said last)."""
    base = SuiteStepStatus(name=step.name, action=step.fault.action)
    if demo is None:
        if was is not None and was.demo and was.phase in ("Failed", "Aborted", "Succeeded"):
            return was  # ended, and its demo pruned or deleted since: what it ended as stands
        if was is not None and was.reason == NOT_CREATED:
            return was
        if was is not None and was.demo:
            return was.model_copy(update={"phase": "Failed", "reason": DEMO_DELETED,
                                          "message": f"ChaosDemo {was.demo} was deleted before it ended"})
        return base
    st = demo.get("status") or {}
    phase = st.get("phase") if st.get("phase") in ("Pending", *TERMINAL) else "Running"
    reason = _succeeded_reason(st)
    impact, diagnosis = st.get("impact") or {}, st.get("diagnosis") or {}
    breaches = impact.get("budgetBreaches")
    return base.model_copy(update={
        "demo": str((demo.get("metadata") or {}).get("name", "")), "phase": phase, "reason": reason,
        "message": str(st.get("message") or "")[:300],
        "detection_seconds": _number(st.get("detectionSeconds")),
        "recovery_seconds": _number(st.get("recoverySeconds")),
        "diagnosis_matches": diagnosis.get("matchesInjectedFault") if isinstance(diagnosis, dict) else None,
        "budget_held": (not breaches and reason != "BudgetExceeded") if impact else None,
        "false_alarm": step.fault.action == CONTROL and (reason == "FalseAlarm" or bool(st.get("detectedAt"))),
        "finished_at": st.get("finishedAt") if phase in TERMINAL and isinstance(st.get("finishedAt"), str) else None,
    })


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def totals(steps: list[SuiteStepStatus]) -> SuiteTotals:
    return SuiteTotals(passed=sum(s.phase == "Succeeded" for s in steps),
                       failed=sum(s.phase in ("Failed", "Aborted") for s in steps),
                       false_alarms=sum(s.false_alarm for s in steps),
                       skipped=sum(s.phase == "Skipped" for s in steps))


def _at(text: str | None, default: float) -> float:
    """A time the status holds, or ``default`` if it holds none it can read (it is no authority)."""
    try:
        return parse_iso(text) if text else default
    except ValueError:
        return default


def _ended_at(step: SuiteStepStatus, now: float) -> float:
    return _at(step.finished_at, now)


def _first_run_at(spec: ChaosDemoSuiteSpec, created: float) -> float | None:
    return created if not spec.schedule else cron.parse(spec.schedule).next_after(created)


def _start(spec: ChaosDemoSuiteSpec, status: ChaosDemoSuiteStatus, now: float) -> ChaosDemoSuiteStatus:
    """A new run: the last one (if any) goes to the history, bounded."""
    history = status.history
    if status.run:
        history = [SuiteRunSummary(run=status.run, verdict=status.verdict or "Failed", started_at=status.started_at,
                                   finished_at=status.finished_at, totals=status.totals), *history]
    return ChaosDemoSuiteStatus(
        phase="Running", run=status.run + 1, started_at=iso(now), message=f"run {status.run + 1} started",
        steps=[SuiteStepStatus(name=s.name, action=s.fault.action) for s in spec.steps],
        history=history[:max(0, spec.history_limit - 1)])


def run_of(suite: str, demo: str) -> int | None:
    """The run a demo of this suite belongs to, read from its name (``<suite>-r<run>-<step>``)."""
    prefix = f"{suite}-r"
    if not demo.startswith(prefix):
        return None
    number = demo[len(prefix):].split("-", 1)[0]
    return int(number) if number.isdigit() and len(number) <= 6 else None


def not_created(status: ChaosDemoSuiteStatus, index: int, why: str, now: float) -> ChaosDemoSuiteStatus:
    """Step ``index``'s demo could not be created: the step fails with the API server's own words."""
    steps = list(status.steps)
    steps[index] = steps[index].model_copy(update={"phase": "Failed", "reason": NOT_CREATED, "finished_at": iso(now),
                                                   "message": f"its ChaosDemo was not created: {why}"[:300]})
    return status.model_copy(update={"steps": steps})


def advance(spec: ChaosDemoSuiteSpec, status: ChaosDemoSuiteStatus, owned: Mapping[str, Mapping[str, Any]],
            *, suite: str, now: float, created: float) -> Advance:
    """The suite's next move. ``owned``: the demos the suite owns, by name; ``created``: the suite's creation."""
    def demos(run: int) -> dict[int, Mapping[str, Any]]:
        return {i: owned[n] for i, s in enumerate(spec.steps) if (n := demo_name(suite, run, s.name)) in owned}

    if status.run == 0 or (status.verdict and spec.schedule):
        due = _due(spec, status, created)
        if due is None:
            return Advance(status.model_copy(update={"phase": "Failed" if not status.run else status.phase,
                                                     "message": f"the schedule {spec.schedule!r} never fires",
                                                     "next_run_at": None}), done=True)
        if now < due:
            waiting = status.model_copy(update={"phase": "Waiting", "next_run_at": iso(due),
                                                "message": f"the next run starts at {iso(due)}"})
            return Advance(waiting, wake_at=due)
        status = _start(spec, status, now)
        return _steps(spec, status, demos(status.run), now, started=True)
    if status.verdict:
        return Advance(status, done=True)
    return _steps(spec, status, demos(status.run), now, started=False)


def _due(spec: ChaosDemoSuiteSpec, status: ChaosDemoSuiteStatus, created: float) -> float | None:
    if status.run == 0:
        return _first_run_at(spec, created)
    return cron.parse(spec.schedule).next_after(_at(status.finished_at, created))


def _steps(spec: ChaosDemoSuiteSpec, status: ChaosDemoSuiteStatus, demos: Mapping[int, Mapping[str, Any]],
           now: float, *, started: bool) -> Advance:
    was = {s.name: s for s in status.steps}
    steps: list[SuiteStepStatus] = []
    ready_at = _at(status.started_at, now)
    create, wake, stopped = None, None, False
    for i, step in enumerate(spec.steps):
        s = step_status(step, demos.get(i), was.get(step.name))
        steps.append(s)
        if s.phase == "Pending" and not s.demo:  # not created yet: after the pause that follows the last step
            due = ready_at + (spec.pause_seconds if i else 0)
            create, wake = (i, None) if now >= due else (None, due)
            break
        if s.phase in ("Pending", "Running"):
            break  # its demo runs: the suite is woken when it changes
        ready_at = _ended_at(s, now)
        if s.phase != "Succeeded" and spec.stop_on_failure:
            stopped = True
            break
    rest = spec.steps[len(steps):]
    steps += ([SuiteStepStatus(name=r.name, action=r.fault.action, phase="Skipped",
                               message="stopOnFailure: an earlier step did not succeed") for r in rest] if stopped
              else [SuiteStepStatus(name=r.name, action=r.fault.action) for r in rest])
    status = status.model_copy(update={"steps": steps, "totals": totals(steps)})
    said: list[Said] = [("Normal", "RunStarted", f"run {status.run} started: {len(spec.steps)} steps")] \
        if started else []
    if all(s.phase not in ("Pending", "Running") for s in steps):
        return _finish(spec, status, now, said)
    current = next(s for s in steps if s.phase in ("Pending", "Running"))
    msg = (f"run {status.run}: step {current.name} ({current.demo}) {current.phase.lower()}" if current.demo
           else f"run {status.run}: step {current.name} starts" + (f" at {iso(wake)}" if wake else ""))
    return Advance(status.model_copy(update={"phase": "Running", "message": msg[:500]}), create=create,
                   prune_below=status.run - spec.history_limit + 1 if started else 0, wake_at=wake, said=said)


def _finish(spec: ChaosDemoSuiteSpec, status: ChaosDemoSuiteStatus, now: float, said: list[Said]) -> Advance:
    t = status.totals
    verdict = "Succeeded" if t.failed == 0 and t.skipped == 0 and t.false_alarms == 0 else "Failed"
    line = (f"run {status.run} {verdict.lower()}: {t.passed} passed, {t.failed} failed, {t.false_alarms} false "
            f"alarms, {t.skipped} skipped")
    nxt = cron.parse(spec.schedule).next_after(now) if spec.schedule else None
    status = status.model_copy(update={
        "phase": "Waiting" if nxt is not None else verdict, "verdict": verdict, "finished_at": iso(now),
        "next_run_at": iso(nxt) if nxt is not None else None,
        "message": line + (f"; the next run starts at {iso(nxt)}" if nxt is not None else "")})
    told = ("Normal" if verdict == "Succeeded" else "Warning", f"Run{verdict}", line)
    return Advance(status, wake_at=nxt, done=nxt is None and not spec.schedule, said=[*said, told], ended=verdict)

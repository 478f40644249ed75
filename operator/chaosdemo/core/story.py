"""A demo's story: its status and the Kubernetes Events that tell it, as one pure function of what happened.

The run fetches and acts; after each thing that happens it asks ``tell`` for the new status and the
Events to post, saves the one and posts the others. Nothing else writes a demo's status, so every path
a demo can take (each action, each refusal, each failure, a resume at any phase) is a unit test here:

    Started -> TargetChosen -> Requested -> Injected -> Looked* -> Detected -> Looked* (Undone)
            -> Recovered -> AwaitingAgreement* -> Agreed | NoAgreementToWait -> Succeeded
    a no-fault control (action none): ... -> Injected -> Looked* -> ControlQuiet -> Succeeded,
                                      or -> Detected (control) -> Ended (FalseAlarm)
    beside it:       Diagnosed | DiagnosisFailed; with the SQL canary CanaryStarted (preflight),
                     RowsMarked (just before the injection), Felt*
    on any way out:  Aborted (nothing injected), DryRunEnded, DeadlinePassed, Ended (failed), UndoFailed

The words: a fault is *undone* (the operator takes it back: starts the node, heals the partition,
resumes the process); the cluster has *recovered* when every invariant held for the stability window;
a *look* is one snapshot read and stepped (``core/step.py``); the *record* of a demo is its status.
The phase is computed from the conditions on every story, and the message is bounded, so no status
grows past what the API server accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chaosdemo.api import conditions as cond
from chaosdemo.api.models import (
    CONTROL,
    ChaosDemoStatus,
    ConditionType,
    Diagnosis,
    ImpactStatus,
    InjectionRecord,
    ObserverSight,
    TargetStatus,
    Violation,
)
from chaosdemo.api.timestamps import seconds_between
from chaosdemo.core.canary import row_ranges
from chaosdemo.core.scrub import clip
from chaosdemo.core.sightings import close, ours

__all__ = [
    "MAX_MESSAGE",
    "Aborted",
    "Agreed",
    "AwaitingAgreement",
    "CanaryStarted",
    "ControlQuiet",
    "DeadlinePassed",
    "Detected",
    "Diagnosed",
    "DiagnosisFailed",
    "DryRunEnded",
    "Ended",
    "Felt",
    "Happening",
    "Injected",
    "Looked",
    "NoAgreementToWait",
    "Note",
    "Recovered",
    "Requested",
    "RowsMarked",
    "Started",
    "Story",
    "Succeeded",
    "TargetChosen",
    "UndoFailed",
    "Undone",
    "tell",
    "verdict",
]

MAX_MESSAGE = 1024
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Note:
    """A Kubernetes Event to post on the demo."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Story:
    status: ChaosDemoStatus
    events: tuple[Note, ...] = ()

    @property
    def ended(self) -> bool:
        """The demo has ended: kopf stops its daemon as soon as it sees this status, so it is written last."""
        return self.status.phase in cond.TERMINAL


# --- what can happen, in the order it usually does


@dataclass(frozen=True)
class Started:
    cluster: str  # namespace/name of the TidbCluster


@dataclass(frozen=True)
class TargetChosen:
    pods: int
    stores: int
    target: TargetStatus


@dataclass(frozen=True)
class CanaryStarted:
    database: str
    baseline_seconds: int
    resumed: bool  # its database was there: the operator restarted mid-demo
    not_resumed: str = ""  # why the canary could not carry on after a restart (the demo goes on without it)


@dataclass(frozen=True)
class Felt:
    """What TiDB's clients felt so far, from the SQL canary (``core/canary.py``)."""

    impact: ImpactStatus
    clients: ObserverSight  # the tidb-clients observer


@dataclass(frozen=True)
class RowsMarked:
    """The SQL canary's rows whose leader is on the store about to be broken (kept for a restarted operator)."""

    ranges: tuple[tuple[int, int], ...]
    share: float | None


@dataclass(frozen=True)
class Requested:
    action: str


@dataclass(frozen=True)
class Injected:
    detail: str
    at: str  # when the fault took effect (at the latest, when it was requested)


@dataclass(frozen=True)
class Looked:
    """One more look: the pure step's message (None: unchanged), the violation timeline, the sightings."""

    message: str | None
    violations: tuple[Violation, ...]
    dropped: int
    observers: tuple[ObserverSight, ...]


@dataclass(frozen=True)
class Detected:
    invariant: str
    message: str
    at: str
    diagnosis: bool  # a diagnosis is asked for (spec.diagnosis.enabled)
    control: bool = False  # a no-fault control: nothing was injected, so this is a false alarm


@dataclass(frozen=True)
class ControlQuiet:
    """A no-fault control's window passed with no invariant broken."""

    seconds: float


@dataclass(frozen=True)
class Undone:
    detail: str
    node_level: bool


@dataclass(frozen=True)
class UndoFailed:
    error: str


@dataclass(frozen=True)
class Recovered:
    at: str  # when every invariant started to hold
    stability_seconds: float


@dataclass(frozen=True)
class AwaitingAgreement:
    shows: str  # what tidb-operator's status still shows wrong


@dataclass(frozen=True)
class Agreed:
    seconds: float  # after the injection
    waited: bool  # it disagreed at first: say when it came round


@dataclass(frozen=True)
class NoAgreementToWait:
    """The TidbCluster carries no tidb-operator status: nothing to wait for, and the sightings say so."""


@dataclass(frozen=True)
class Diagnosed:
    diagnosis: Diagnosis


@dataclass(frozen=True)
class DiagnosisFailed:
    reason: str  # DiagnosisError or DiagnosisTimeout
    message: str


@dataclass(frozen=True)
class DeadlinePassed:
    reason: str  # NotDetected or RecoveryTimeout
    detected: bool


@dataclass(frozen=True)
class Aborted:
    """The demo ends with nothing injected: ``refused`` is the stage that said no."""

    reason: str
    message: str
    refused: Literal["preflight", "target", "fault"]


@dataclass(frozen=True)
class DryRunEnded:
    pod: str


@dataclass(frozen=True)
class Succeeded:
    """Recovered, and what users look at agrees: the demo's line is composed from its record."""


@dataclass(frozen=True)
class Ended:
    """The demo ends otherwise: failed (a deadline, a refused record, a fault that could not be undone)."""

    ok: bool
    reason: str
    message: str


Happening = (Started | TargetChosen | CanaryStarted | Felt | RowsMarked | Requested | Injected | Looked | Detected
             | Undone | UndoFailed | Recovered | AwaitingAgreement | Agreed | NoAgreementToWait | Diagnosed
             | DiagnosisFailed | DeadlinePassed | Aborted | DryRunEnded | Succeeded | Ended | ControlQuiet)


def verdict(d: Diagnosis | None) -> str:
    """The diagnosis, in the words that end a demo's summary line."""
    if d is None:
        return ""
    match = "matches the injected fault" if d.matches_injected_fault else "does NOT match the injected fault"
    return f"; diagnosis ({d.engine}): {d.fault_class}, {match}"


class _Draft:
    """The status being written by one ``tell``: a copy, never the caller's."""

    def __init__(self, status: ChaosDemoStatus, now: str, generation: int) -> None:
        self.s, self.now, self.generation = status.model_copy(deep=True), now, generation
        self.events: list[Note] = []

    def set(self, type_: ConditionType, status: str, reason: str, message: str) -> None:
        self.s.conditions = cond.set_condition(self.s.conditions, type_, status, reason,
                                               clip(message, MAX_MESSAGE), self.now, self.generation)

    def post(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Note(type_, reason, message))

    def ours(self) -> None:
        s = self.s
        s.observers = ours(s.observers, s.detected_at, s.detection_seconds, s.detected_by, s.recovered_at,
                           s.recovery_seconds)

    def end(self, ok: bool, reason: str, message: str) -> None:
        s = self.s
        s.observers = close(s.observers)
        s.finished_at, s.message = self.now, message
        self.set("Succeeded", "True" if ok else "False", reason, message)
        self.post("Normal" if ok else "Warning", cond.compute_phase(s.conditions), message)


def _started(d: _Draft, h: Started) -> None:
    if d.s.conditions:
        return  # a resumed run: its story began before
    d.s.conditions = cond.initial_conditions(d.now, d.generation)
    d.s.started_at, d.s.message = d.now, "running preflight checks"
    d.post("Normal", "Started", f"preflight of TidbCluster {h.cluster}")


def _target_chosen(d: _Draft, h: TargetChosen) -> None:
    t = h.target
    d.set("PreflightPassed", "True", "ClusterHealthy",
          f"{h.pods} TiKV pods Ready, {h.stores} stores Up, no unhealthy regions")
    which = f"PD member {t.pd_member}" if t.component == "pd" else f"PD store {t.store_id}"
    what = f"{t.pod} on node {t.node}, {which} ({t.selection})"
    d.s.target = t
    d.set("TargetSelected", "True", "TargetChosen", what)
    d.s.message = f"target {t.pod} ({'PD leader' if t.component == 'pd' else f'store {t.store_id}'}) chosen"
    d.post("Normal", "TargetSelected", what)


def _canary_started(d: _Draft, h: CanaryStarted) -> None:
    if h.not_resumed:
        why = f"the SQL canary could not carry on after the operator restarted ({h.not_resumed})"
        d.s.impact = ImpactStatus(note=f"{why}: nothing measured from then on"[:300])
        d.post("Warning", "CanaryNotResumed", f"{why}; the demo goes on without it")
        return
    if h.resumed:
        d.post("Normal", "CanaryResumed", f"the SQL canary carries on in its database {h.database}; what it "
               "measured before the operator restarted is lost")
        return
    d.s.message = f"the SQL canary is taking its {h.baseline_seconds}s baseline"
    d.post("Normal", "CanaryStarted", f"the SQL canary runs in its own database {h.database}: "
           f"{h.baseline_seconds}s of baseline before anything is injected")


def _felt(d: _Draft, h: Felt) -> None:
    d.s.impact = h.impact
    d.s.observers = [*(o for o in d.s.observers if o.observer != "tidb-clients"), h.clients]


def _rows_marked(d: _Draft, h: RowsMarked) -> None:
    d.s.impact = (d.s.impact or ImpactStatus()).model_copy(
        update={"affected_ranges": row_ranges(h.ranges), "affected_rows_share": h.share})


def _requested(d: _Draft, h: Requested) -> None:
    d.s.injection = InjectionRecord(action=h.action, requested_at=d.now)
    if h.action == CONTROL:
        d.set("FaultInjected", "Unknown", "Injecting", "no-fault control: nothing will be injected")
        d.s.message = "no-fault control: nothing is injected; watching for a false alarm"
        return
    d.set("FaultInjected", "Unknown", "Injecting", f"{h.action} is being injected")
    d.s.message = f"injecting {h.action} into {d.s.target.pod if d.s.target else 'its target'}"


def _injected(d: _Draft, h: Injected) -> None:
    s = d.s
    s.injection = (s.injection or InjectionRecord()).model_copy(update={"detail": h.detail})
    s.injected_at = h.at
    control = s.injection.action == CONTROL
    # A control's window starts here: FaultInjected is True (the phase is Detecting), saying nothing was.
    d.set("FaultInjected", "True", "NoFaultControl" if control else "Injected", h.detail)
    d.set("FailureDetected", "Unknown", "Watching", "watching the invariants")
    s.message = f"{h.detail}; watching for {'a false alarm' if control else 'the failure'}"
    d.post("Normal" if control else "Warning", "ControlStarted" if control else "FaultInjected", h.detail)


def _looked(d: _Draft, h: Looked) -> None:
    s = d.s
    if h.message is not None:
        s.message = h.message
    s.violations, s.violations_dropped = list(h.violations), h.dropped
    clients = [o for o in s.observers if o.observer == "tidb-clients"]  # the canary's, told by Felt
    s.observers = [*(o for o in h.observers if o.observer != "tidb-clients"), *clients]
    d.ours()


def _detected(d: _Draft, h: Detected) -> None:
    s = d.s
    assert s.injected_at is not None, "detected before the injection was recorded"
    s.detected_at, s.detected_by = h.at, h.invariant
    s.detection_seconds = seconds_between(s.injected_at, h.at)
    d.set("FailureDetected", "True", "InvariantBroken", f"{h.invariant}: {h.message}")
    d.set("Recovered", "Unknown", "Waiting", "waiting for every invariant to hold")
    s.message = f"detected in {s.detection_seconds}s by {h.invariant}"
    d.ours()
    if h.control:
        d.set("Diagnosed", "False", "NoFault", "a no-fault control is not diagnosed: nothing was injected")
        d.post("Warning", "FalseAlarm", f"{h.invariant} broke {s.detection_seconds}s into a no-fault control, though "
               f"nothing was injected: {h.message}")
        return
    if h.diagnosis:
        d.set("Diagnosed", "Unknown", "Diagnosing", "gathering evidence for the diagnosis")
    else:
        d.set("Diagnosed", "False", "Disabled", "spec.diagnosis.enabled is false")
    d.post("Warning", "FailureDetected",
           f"{h.invariant} broke {s.detection_seconds}s after injection: {h.message}")


def _undone(d: _Draft, h: Undone) -> None:
    if d.s.injection is not None:
        d.s.injection = d.s.injection.model_copy(update={"undone_at": d.now})
    d.s.message = h.detail
    d.post("Normal", "FaultUndone", h.detail)


def _undo_failed(d: _Draft, h: UndoFailed) -> None:
    d.post("Warning", "UndoFailed", h.error)


def _recovered(d: _Draft, h: Recovered) -> None:
    s = d.s
    assert s.injected_at is not None, "recovered before the injection was recorded"
    s.recovered_at = h.at
    s.recovery_seconds = seconds_between(s.injected_at, h.at)
    d.set("Recovered", "True", "AllInvariantsHold",
          f"every invariant held for {h.stability_seconds:g}s; recovered {s.recovery_seconds}s after the injection")
    s.message = f"recovered in {s.recovery_seconds}s"
    d.ours()
    d.post("Normal", "Recovered", s.message)


def _awaiting(d: _Draft, h: AwaitingAgreement) -> None:
    d.s.message = f"recovered; waiting for tidb-operator's status to agree (it shows {h.shows})"


def _agreed(d: _Draft, h: Agreed) -> None:
    if h.waited:
        d.post("Normal", "TidbOperatorAgrees",
               f"tidb-operator's status shows the cluster Ready again, {h.seconds:.1f}s after the injection")


def _no_agreement(d: _Draft, h: NoAgreementToWait) -> None:
    d.s.observers = [o if o.observer != "tidb-operator" or o.saw_fault_at else
                     o.model_copy(update={"what": "no tidb-operator status on the TidbCluster: not waited for"})
                     for o in d.s.observers]


def _diagnosed(d: _Draft, h: Diagnosed) -> None:
    x = h.diagnosis
    d.s.diagnosis, d.s.diagnosed_at = x, d.now
    d.set("Diagnosed", "True", "ClaudeDiagnosed" if x.engine == "claude" else "RulesDiagnosed", x.summary[:300])
    d.post("Normal" if x.matches_injected_fault else "Warning", "Diagnosed",
           f"{x.engine}: {x.summary} [{x.fault_class}; "
           f"{'matches' if x.matches_injected_fault else 'does not match'} the injected fault]"
           + (f" (rules engine because {x.fallback_reason})" if x.fallback_reason else ""))


def _diagnosis_failed(d: _Draft, h: DiagnosisFailed) -> None:
    d.set("Diagnosed", "False", h.reason, h.message[:300])


def _deadline(d: _Draft, h: DeadlinePassed) -> None:
    what = "a no-fault control saw an invariant break" if h.reason == "FalseAlarm" else "deadline passed"
    d.set("Recovered" if h.detected else "FailureDetected", "False", h.reason, what)


def _aborted(d: _Draft, h: Aborted) -> None:
    if h.refused == "fault":
        d.set("FaultInjected", "False", h.reason, f"nothing was injected: {h.message}")
    else:
        d.set("TargetSelected" if h.refused == "target" else "PreflightPassed", "False", h.reason, h.message)
        d.set("FaultInjected", "False", "NotInjected", "nothing was injected")
    d.end(False, "Aborted", f"{h.reason}: {h.message}")


def _dry_run(d: _Draft, h: DryRunEnded) -> None:
    d.set("FaultInjected", "False", "DryRun", "dryRun is set: nothing was injected")
    d.end(True, "DryRun", f"dry run: preflight passed and {h.pod} would be hit; nothing was injected")


def _control_quiet(d: _Draft, h: ControlQuiet) -> None:
    what = f"no invariant broke in the {h.seconds:g}s window, and nothing was injected"
    d.set("FailureDetected", "False", "NothingDetected", what)
    d.set("Diagnosed", "False", "NoFault", "a no-fault control is not diagnosed: nothing was injected")
    d.set("Recovered", "True", "NothingToRecover", "nothing was injected")
    d.s.message = f"no-fault control held: {what}"
    d.post("Normal", "ControlHeld", d.s.message)


def _succeeded(d: _Draft, h: Succeeded) -> None:
    s = d.s
    if s.injection is not None and s.injection.action == CONTROL:
        held = next((c.message for c in s.conditions if c.type == "FailureDetected"), "")
        d.end(True, "Succeeded", f"no-fault control held: {held}")
        return
    d.end(True, "Succeeded", f"detected in {s.detection_seconds}s by {s.detected_by}, recovered in "
                             f"{s.recovery_seconds}s{verdict(s.diagnosis)}")


def _ended(d: _Draft, h: Ended) -> None:
    d.end(h.ok, h.reason, h.message)


_TELL: dict[type, Callable[[_Draft, Any], None]] = {
    Started: _started, TargetChosen: _target_chosen, CanaryStarted: _canary_started, Felt: _felt,
    RowsMarked: _rows_marked, Requested: _requested, Injected: _injected, Looked: _looked,
    Detected: _detected, Undone: _undone, UndoFailed: _undo_failed, Recovered: _recovered,
    AwaitingAgreement: _awaiting, Agreed: _agreed, NoAgreementToWait: _no_agreement, Diagnosed: _diagnosed,
    DiagnosisFailed: _diagnosis_failed, DeadlinePassed: _deadline, Aborted: _aborted, DryRunEnded: _dry_run,
    Succeeded: _succeeded, Ended: _ended, ControlQuiet: _control_quiet,
}


def tell(status: ChaosDemoStatus, happened: Happening, *, now: str, generation: int) -> Story:
    """The status after ``happened`` (a new value: ``status`` is left as it was) and the Events that tell it."""
    d = _Draft(status, now, generation)
    _TELL[type(happened)](d, happened)
    d.s.message = clip(d.s.message, MAX_MESSAGE)
    d.s.phase = cond.compute_phase(d.s.conditions)
    d.s.observed_generation = generation
    return Story(d.s, tuple(d.events))


def told(status: ChaosDemoStatus, happenings: Sequence[Happening], *, now: str, generation: int = 1) -> Story:
    """Several happenings told one after another (the events of all of them): for tests and replays."""
    events: list[Note] = []
    for h in happenings:
        story = tell(status, h, now=now, generation=generation)
        status, events = story.status, [*events, *story.events]
    return Story(status, tuple(events))

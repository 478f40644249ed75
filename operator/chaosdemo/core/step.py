"""The decision core: detection, recovery and tidb-operator's agreement as one pure step.

After the injection the lifecycle loops: it fetches the new watch-journal
entries and a snapshot, calls ``step`` and acts on the decision. Everything
that is decided (detected or not, by which invariant and when; recovered or
not; failed and why; whether the fault's undo is due) is decided here, from
plain data and the snapshot's own clock, so every path is a unit test:

    KeepWaiting        nothing to do but look again
    UndoNow            the fault's undo is due (node-kill: start the node)
    Detected           the first breach, and when it happened
    Recovered          every invariant held for the stability window
    AwaitAgreement     recovered, but tidb-operator's status still shows something wrong
    Agreed             what users look at (tidb-operator's status) agrees: the demo may end
    NoOperatorStatus   the TidbCluster carries no tidb-operator status: nothing to wait for
    Failed             a deadline passed (NotDetected, RecoveryTimeout, TidbOperatorDisagrees)
    FalseAlarm         a no-fault control (nothing injected) saw an invariant break
    Quiet              a no-fault control's window passed with nothing detected: the control holds

Three phases follow one another in the state: detecting, recovering, then agreeing. tidb-operator
copies PD's store states on its own sync period, so ``kubectl get tidbcluster`` may still say not
Ready for a while after recovery is proven (about a minute after a node-kill on the kind tier): the
demo ends when it agrees, within the recovery deadline.

Detection reads the journal before the snapshot: a pod deleted and recreated
between two looks only shows in its watch events, timed by their arrival.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from chaosdemo.api.models import ChaosDemoStatus, TargetStatus, Violation
from chaosdemo.api.timestamps import iso, parse_iso
from chaosdemo.core.history import ContainerLog, PodHistory, remember_containers, remember_pod, remember_pods
from chaosdemo.core.invariants import (
    Breach,
    InvariantConfig,
    evaluate,
    pd_target_breaches,
    pod_event_breaches,
    target_changed,
)
from chaosdemo.core.journal import PodEvent
from chaosdemo.core.pd_moves import PDMoves, excuse
from chaosdemo.core.sightings import tidb_operator_shows
from chaosdemo.core.snapshot import Snapshot
from chaosdemo.core.timeline import open_violations, update_timeline

__all__ = [
    "Agreed",
    "AwaitAgreement",
    "Decision",
    "Detected",
    "Failed",
    "FalseAlarm",
    "KeepWaiting",
    "NoOperatorStatus",
    "Quiet",
    "Recovered",
    "Step",
    "UndoNow",
    "WatchPlan",
    "WatchState",
    "step",
    "summarize",
    "watch_from",
]


@dataclass(frozen=True)
class WatchPlan:
    """What a demo's watch is held to; fixed once the fault is injected."""

    injected_at: float
    detection_seconds: float
    recovery_seconds: float
    stability_seconds: float
    target: TargetStatus
    undo_after: float | None = None  # seconds after injection the fault's undo is due; None: nothing to undo
    cfg: InvariantConfig = field(default_factory=InvariantConfig)
    control: bool = False  # a no-fault control: nothing was injected, so any detection is a false alarm

    @property
    def detection_deadline(self) -> float:
        return self.injected_at + self.detection_seconds

    @property
    def recovery_deadline(self) -> float:
        return self.injected_at + self.recovery_seconds


@dataclass(frozen=True)
class WatchState:
    """Everything the watch remembers between two steps (and rebuilds from status on resume)."""

    detected: bool = False
    undone: bool = False
    # The operator restarted after the injection: the target's own evidence is read once.
    resumed: bool = False
    stable_since: float | None = None
    violations: tuple[Violation, ...] = ()
    dropped: int = 0
    message: str = ""
    history: PodHistory = field(default_factory=dict)
    containers: ContainerLog = field(default_factory=ContainerLog)
    recovered_at: float | None = None  # recovery proven: the watch waits for tidb-operator's agreement
    unread: int = 0  # looks in a row where tidb-operator's status could not be read
    shows: str = ""  # what tidb-operator's status last showed wrong ("" nothing yet)
    pd_moves: PDMoves = field(default_factory=PDMoves)  # PD's leader elections and reloads, seen before detection


@dataclass(frozen=True)
class KeepWaiting:
    pass


@dataclass(frozen=True)
class UndoNow:
    pass


@dataclass(frozen=True)
class Detected:
    breaches: tuple[Breach, ...]  # the first is credited with the detection
    at: float


@dataclass(frozen=True)
class Recovered:
    at: float  # when every invariant started to hold (the stability window's start)


@dataclass(frozen=True)
class AwaitAgreement:
    shows: str  # what tidb-operator's status shows wrong of the target


@dataclass(frozen=True)
class Agreed:
    at: float
    waited: bool  # it disagreed first


@dataclass(frozen=True)
class NoOperatorStatus:
    pass


@dataclass(frozen=True)
class Failed:
    reason: str  # NotDetected, RecoveryTimeout, TidbOperatorDisagrees or FalseAlarm (a control, resumed)
    message: str
    detected: bool

    @property
    def recovered(self) -> bool:
        """Recovery was proven (only tidb-operator's status disagreed): no stage condition turns False."""
        return self.reason == "TidbOperatorDisagrees"


@dataclass(frozen=True)
class FalseAlarm:
    breaches: tuple[Breach, ...]  # the first is credited with the (false) detection
    at: float


@dataclass(frozen=True)
class Quiet:
    at: float  # the end of the control's window


Decision = (KeepWaiting | UndoNow | Detected | Recovered | AwaitAgreement | Agreed | NoOperatorStatus | Failed
            | FalseAlarm | Quiet)


@dataclass(frozen=True)
class Step:
    state: WatchState
    decision: Decision
    changed: bool  # the status has news worth saving


def summarize(breaches: Sequence[Breach], n: int = 3) -> str:
    text = "; ".join(b.message for b in breaches[:n])
    return text + (f" (+{len(breaches) - n} more)" if len(breaches) > n else "")


def _read_journal(
    state: WatchState, events: Sequence[PodEvent]
) -> tuple[PodHistory, list[Violation], tuple[float, list[Breach]] | None]:
    """The pod events since the last step: history, opened violations, and the first breach seen."""
    history, violations = state.history, list(state.violations)
    first: tuple[float, list[Breach]] | None = None
    for ev in events:
        at = iso(ev.received_at)
        history = remember_pod(history, ev.pod, at, deleted=ev.type == "DELETED")
        breaches = pod_event_breaches(ev.type, ev.pod)
        if breaches:
            violations = open_violations(violations, breaches, at)
            if first is None:
                first = (ev.received_at, breaches)
    return history, violations, first


def _missed(plan: WatchPlan, snap: Snapshot) -> tuple[float, list[Breach]] | None:
    """A fault that took effect while the operator was down, timed by what it left on the target."""
    t = plan.target
    breaches = target_changed(snap, t.pod, t.pod_uid, t.restart_count, t.component)
    if not breaches:
        return None
    pod = snap.pod(t.pod)
    at = parse_iso(pod.created) if pod is not None and pod.created else snap.taken_at
    noted = [Breach(b.invariant, b.subject, f"{b.message} (seen after an operator restart)") for b in breaches]
    return max(at, plan.injected_at), noted


def watch_from(status: ChaosDemoStatus, *, resumed: bool, history: PodHistory | None = None) -> WatchState:
    """The watch as a run starts following, from its record: a restarted operator carries on where it stopped.

    ``resumed``: the fault may have taken effect before this operator could watch (it restarted after the
    injection, or found the fault already in effect), so the target's own trace is read once.
    """
    undone = status.injection is not None and status.injection.undone_at is not None
    return WatchState(
        detected=status.detected_at is not None, undone=undone, resumed=resumed,
        recovered_at=parse_iso(status.recovered_at) if status.recovered_at else None,
        violations=tuple(status.violations), dropped=status.violations_dropped, message=status.message,
        history=history or {})


def _agreement(state: WatchState, plan: WatchPlan, snap: Snapshot) -> Step:
    """Recovered: does tidb-operator's status agree? One unanswered read is not "no status": three in a row are."""
    what = tidb_operator_shows(snap, plan.target)
    if what is None:
        unread = state.unread + 1
        state = replace(state, unread=unread)
        return Step(state, NoOperatorStatus() if unread >= 3 else KeepWaiting(), unread >= 3)
    state = replace(state, unread=0)
    if what == "":
        return Step(state, Agreed(snap.taken_at, waited=bool(state.shows)), True)
    if snap.taken_at > plan.recovery_deadline:
        return Step(state, Failed("TidbOperatorDisagrees", f"recovered, but tidb-operator's status still shows "
                                  f"{what} at the recovery deadline", detected=True), True)
    if what != state.shows:
        return Step(replace(state, shows=what), AwaitAgreement(what), True)
    return Step(state, KeepWaiting(), False)


def _breaches(state: WatchState, plan: WatchPlan, snap: Snapshot) -> tuple[WatchState, list[Breach]]:
    """The snapshot's breaches. While detecting, PD electing a leader, and the reload of its view that follows
    (``core.pd_moves``), are not a detection; once detected, they stay on the record and hold recovery until
    PD answers and has heard every store again. On a PD target they are the fault itself: never excused, and
    its own invariants (``pd_target_breaches``) come first."""
    breaches = evaluate(snap, plan.cfg)
    if plan.target.component == "pd":
        return state, [*pd_target_breaches(snap, plan.target, detected=state.detected), *breaches]
    if state.detected:
        return state, breaches
    moves, breaches = excuse(state.pd_moves, snap, plan.cfg, breaches)
    return replace(state, pd_moves=moves), breaches


def _detecting(state: WatchState, plan: WatchPlan, first: tuple[float, list[Breach]] | None, breaches: list[Breach],
               snap: Snapshot, changed: bool) -> Step:
    """Before the detection, and for a no-fault control (nothing injected, so any detection is false)."""
    if plan.control and state.detected:  # resumed after a control's false alarm was recorded
        return Step(state, Failed("FalseAlarm", "a no-fault control saw an invariant break though nothing was "
                                  "injected (recorded before the operator restarted)", detected=True), True)
    seen = (first[0], (*first[1], *breaches)) if first is not None else (snap.taken_at, tuple(breaches))
    if seen[1]:
        said = FalseAlarm(seen[1], seen[0]) if plan.control else Detected(seen[1], seen[0])
        return Step(replace(state, detected=True), said, True)
    if snap.taken_at > plan.detection_deadline:
        if plan.control:
            return Step(state, Quiet(snap.taken_at), True)
        return Step(state, Failed("NotDetected", f"no invariant broke within {plan.detection_seconds:g}s "
                                  "of the injection: the fault went unnoticed", detected=False), True)
    return Step(state, KeepWaiting(), changed)


def step(state: WatchState, plan: WatchPlan, events: Sequence[PodEvent], snap: Snapshot) -> Step:
    """One look: the journal's new entries and a snapshot in, the next state and a decision out."""
    history, violations, first = _read_journal(state, events)
    journal_news = first is not None
    state = replace(state, history=remember_pods(history, snap), containers=remember_containers(state.containers, snap),
                    violations=tuple(violations))
    if state.recovered_at is not None:
        return _agreement(state, plan, snap)

    if (plan.undo_after is not None and not state.undone
            and snap.taken_at >= plan.injected_at + plan.undo_after):
        return Step(state, UndoNow(), changed=True)

    state, breaches = _breaches(state, plan, snap)
    now = iso(snap.taken_at)
    timeline, dropped = update_timeline(violations, breaches, now)
    changed = timeline != violations or journal_news
    if not state.detected and state.resumed and first is None:
        first = _missed(plan, snap)
        if first is not None:
            timeline = open_violations(timeline, first[1], iso(first[0]))
    state = replace(state, violations=tuple(timeline), dropped=state.dropped + dropped, resumed=False)

    if not state.detected or plan.control:
        return _detecting(state, plan, first, breaches, snap, changed)

    if breaches:
        changed = changed or state.stable_since is not None
        state = replace(state, stable_since=None)
        if snap.taken_at > plan.recovery_deadline:
            return Step(state, Failed("RecoveryTimeout", f"the cluster was not healthy {plan.recovery_seconds:g}s "
                                      f"after the injection: {summarize(breaches)}", detected=True), True)
        message = f"recovering: {summarize(breaches, 2)}"
    else:
        if state.stable_since is None:
            state, changed = replace(state, stable_since=snap.taken_at), True
        assert state.stable_since is not None
        if snap.taken_at - state.stable_since >= plan.stability_seconds:
            return Step(replace(state, recovered_at=state.stable_since), Recovered(state.stable_since), True)
        message = f"all invariants hold; confirming for {plan.stability_seconds:g}s"
    if message != state.message:
        state, changed = replace(state, message=message), True
    return Step(state, KeepWaiting(), changed)

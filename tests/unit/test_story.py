"""Every path of a demo's status, told by the pure story: each action, each refusal, each failure, a diagnosis
that falls back to the rules, and a resume at each phase. No cluster: the status and Events are plain values."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaosdemo.api import conditions as cond
from chaosdemo.api.models import ChaosDemoStatus, Diagnosis, ObserverSight, TargetStatus, Violation
from chaosdemo.api.timestamps import iso
from chaosdemo.core.canary import Budget, Tally, impact, sighting, to_status
from chaosdemo.core.snapshot import TidbOperatorState
from chaosdemo.core.step import (
    Agreed,
    AwaitAgreement,
    Failed,
    KeepWaiting,
    Recovered,
    WatchPlan,
    step,
    watch_from,
)
from chaosdemo.core.story import (
    MAX_MESSAGE,
    Aborted,
    AwaitingAgreement,
    CanaryStarted,
    DeadlinePassed,
    Detected,
    Diagnosed,
    DiagnosisFailed,
    DryRunEnded,
    Ended,
    Felt,
    Happening,
    Injected,
    Looked,
    NoAgreementToWait,
    Requested,
    RowsMarked,
    Started,
    Story,
    Succeeded,
    TargetChosen,
    UndoFailed,
    Undone,
    tell,
    told,
)
from chaosdemo.core.story import Agreed as AgreedStory
from chaosdemo.core.story import Recovered as RecoveredStory

from .helpers import NOW, healthy

T0 = iso(NOW)
TARGET = TargetStatus(pod="basic-tikv-1", pod_uid="uid-basic-tikv-1", node="node-1", store_id="2",
                      selection="random among 3")
ACTIONS = {  # action: undone by the operator (its undo is due after a time)
    "pod-delete": False, "pod-kill": False, "container-kill": False,
    "node-kill": True, "process-pause": True, "network-partition": True}


def at(seconds: float) -> str:
    return iso(NOW + seconds)


def diagnosis(engine: str = "claude", *, matches: bool = True, fallback: str = "") -> Diagnosis:
    return Diagnosis(summary="TiKV pod basic-tikv-1 was deleted", root_cause="the pod was deleted",
                     fault_class="pod-failure", affected_pod="basic-tikv-1", affected_store="2", affected_node="",
                     confidence=0.9, evidence=["pod gone"], recommended_actions=["none"], engine=engine,
                     fallback_reason=fallback, matches_injected_fault=matches)


def replay(steps: list[tuple[float, Happening]], status: ChaosDemoStatus | None = None) -> tuple[Story, list[str]]:
    """Tell each happening at its time (seconds after T0); the last story and the phase after each."""
    status, phases, events = status or ChaosDemoStatus(), [], []
    for t, h in steps:
        story = tell(status, h, now=at(t), generation=1)
        status, events = story.status, [*events, *story.events]
        phases.append(status.phase)
    return Story(status, tuple(events)), phases


def through_injection(action: str = "pod-delete") -> list[tuple[float, Happening]]:
    return [(0, Started("tidb-cluster/basic")), (1, TargetChosen(3, 3, TARGET)), (2, Requested(action)),
            (3, Injected(f"{action} on basic-tikv-1", at(3)))]


def condition(s: ChaosDemoStatus, type_: str) -> tuple[str, str]:
    c = cond.get(s.conditions, type_)  # type: ignore[arg-type]
    assert c is not None
    return c.status, c.reason


def reasons(story: Story) -> list[str]:
    return [e.reason for e in story.events]


# --- success, for each action


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_demo_that_succeeds_tells_each_stage_and_ends_with_its_timings(action: str) -> None:
    undone = [(20.0, Undone(f"{action} undone", node_level=action == "node-kill"))] if ACTIONS[action] else []
    story, phases = replay([
        *through_injection(action),
        (5, Detected("pd-stores-up", "store 2 is Disconnected", at(5), diagnosis=True)),
        *undone,
        (30, Diagnosed(diagnosis())),
        (60, RecoveredStory(at(50), 10)),
        (61, AgreedStory(58.0, waited=True)),
        (62, Succeeded()),
    ])
    s = story.status
    assert phases[:5] == ["Pending", "Pending", "Injecting", "Detecting", "Diagnosing"]
    assert phases[-1] == "Succeeded" and s.finished_at == at(62)
    assert (s.injected_at, s.detected_at, s.recovered_at) == (at(3), at(5), at(50))
    assert (s.detection_seconds, s.recovery_seconds, s.detected_by) == (2.0, 47.0, "pd-stores-up")
    assert s.message == ("detected in 2.0s by pd-stores-up, recovered in 47.0s; diagnosis (claude): pod-failure, "
                         "matches the injected fault")
    assert all(c.status == "True" for c in s.conditions), s.conditions
    assert (s.injection is not None and s.injection.undone_at) == (at(20) if ACTIONS[action] else None)
    assert reasons(story) == ["Started", "TargetSelected", "FaultInjected", "FailureDetected",
                              *(["FaultUndone"] if ACTIONS[action] else []), "Diagnosed", "Recovered",
                              "TidbOperatorAgrees", "Succeeded"]
    ours = next(o for o in s.observers if o.observer == "chaosdemo")
    assert (ours.saw_fault_seconds, ours.saw_end_seconds, ours.what) == (2.0, 47.0, "pd-stores-up broke")


def test_the_phase_goes_recovering_once_diagnosed_and_an_agreement_without_a_wait_posts_nothing() -> None:
    story, phases = replay([
        *through_injection(),
        (5, Detected("tikv-pods-ready", "pod gone", at(5), diagnosis=True)),
        (9, Diagnosed(diagnosis())),
        (30, RecoveredStory(at(20), 10)),
        (30, AgreedStory(30.0, waited=False)),
    ])
    assert phases[-3:] == ["Recovering", "Recovering", "Recovering"]
    assert reasons(story)[-1] == "Recovered"


def test_a_diagnosis_disabled_is_said_so_and_the_phase_skips_diagnosing() -> None:
    """Once a local-tier test (it took 10 s); the run starts no diagnosis then (run/follow.py, ``_act``)."""
    story, phases = replay([*through_injection(), (5, Detected("tikv-pods-ready", "gone", at(5), diagnosis=False)),
                            (30, RecoveredStory(at(20), 10)), (30, Succeeded())])
    assert condition(story.status, "Diagnosed") == ("False", "Disabled")
    assert "Diagnosing" not in phases and phases[-2:] == ["Recovering", "Succeeded"]
    assert story.status.diagnosis is None


def test_a_dry_run_succeeds_with_nothing_injected() -> None:
    story, _ = replay([(0, Started("tidb-cluster/basic")), (1, TargetChosen(3, 3, TARGET)),
                       (1, DryRunEnded("basic-tikv-1"))])
    s = story.status
    assert s.phase == "Succeeded" and condition(s, "Succeeded") == ("True", "DryRun")
    assert condition(s, "FaultInjected") == ("False", "DryRun") and s.injected_at is None
    assert "basic-tikv-1 would be hit; nothing was injected" in s.message
    assert story.ended and reasons(story)[-1] == "Succeeded"


# --- refusals: Aborted, nothing injected


@pytest.mark.parametrize(("refused", "reason", "stage"), [
    ("preflight", "ClusterUnhealthy", "PreflightPassed"),
    ("preflight", "NamespaceNotAllowed", "PreflightPassed"),
    ("target", "TargetInvalid", "TargetSelected"),
    ("fault", "NodeAlreadyDown", "FaultInjected"),
])
def test_each_refusal_aborts_saying_which_stage_refused_and_that_nothing_was_injected(
        refused: str, reason: str, stage: str) -> None:
    story, _ = replay([(0, Started("tidb-cluster/basic")),
                       (1, Aborted(reason, "why", refused=refused))])  # type: ignore[arg-type]
    s = story.status
    assert s.phase == "Aborted" and condition(s, "Succeeded") == ("False", "Aborted")
    assert condition(s, stage) == ("False", reason)
    assert condition(s, "FaultInjected")[0] == "False"
    assert s.message == f"{reason}: why" and s.finished_at == at(1)
    assert story.events[-1].type == "Warning" and story.events[-1].reason == "Aborted"
    assert all(o.what == "never showed the fault" for o in s.observers if o.observer != "chaosdemo")


# --- failures


def test_not_detected_fails_the_detection_stage() -> None:
    story, _ = replay([*through_injection(), (130, DeadlinePassed("NotDetected", detected=False)),
                       (130, Ended(False, "NotDetected", "no invariant broke within 120s"))])
    s = story.status
    assert s.phase == "Failed" and condition(s, "FailureDetected") == ("False", "NotDetected")
    assert condition(s, "Succeeded") == ("False", "NotDetected") and s.message == "no invariant broke within 120s"
    assert story.events[-1].reason == "Failed" and story.events[-1].type == "Warning"


def test_a_recovery_timeout_fails_the_recovery_stage_and_keeps_the_detection() -> None:
    story, _ = replay([*through_injection(), (5, Detected("tikv-pods-ready", "gone", at(5), diagnosis=False)),
                       (700, DeadlinePassed("RecoveryTimeout", detected=True)),
                       (700, Ended(False, "RecoveryTimeout", "not healthy"))])
    s = story.status
    assert condition(s, "Recovered") == ("False", "RecoveryTimeout") and s.detection_seconds == 2.0
    assert s.phase == "Failed" and s.recovered_at is None


def test_tidb_operator_disagreeing_fails_the_demo_but_leaves_the_recovery_proven() -> None:
    story, _ = replay([*through_injection(), (5, Detected("tikv-pods-ready", "gone", at(5), diagnosis=False)),
                       (40, RecoveredStory(at(30), 10)), (41, AwaitingAgreement("Ready=False (StoreNotUp)")),
                       (700, Ended(False, "TidbOperatorDisagrees", "recovered, but ..."))])
    s = story.status
    assert condition(s, "Recovered") == ("True", "AllInvariantsHold") and s.recovery_seconds == 27.0
    assert condition(s, "Succeeded") == ("False", "TidbOperatorDisagrees") and s.phase == "Failed"


def test_awaiting_agreement_says_what_tidb_operator_still_shows() -> None:
    story, _ = replay([*through_injection(), (5, Detected("x", "y", at(5), diagnosis=False)),
                       (40, RecoveredStory(at(30), 10)), (41, AwaitingAgreement("store of basic-tikv-1 Down"))])
    assert story.status.message == ("recovered; waiting for tidb-operator's status to agree "
                                    "(it shows store of basic-tikv-1 Down)")


def test_no_tidb_operator_status_is_said_in_its_sighting_and_not_waited_for() -> None:
    sights = (ObserverSight(observer="tidb-operator"), ObserverSight(observer="pd", saw_fault_at=at(4)))
    story, _ = replay([*through_injection(), (4, Looked(None, (), 0, sights)), (40, NoAgreementToWait())])
    tc = next(o for o in story.status.observers if o.observer == "tidb-operator")
    assert tc.what == "no tidb-operator status on the TidbCluster: not waited for"
    assert next(o for o in story.status.observers if o.observer == "pd").what == ""


def test_a_record_refused_on_resume_fails_without_touching_the_stage_conditions() -> None:
    story, _ = replay([*through_injection(), (9, Ended(False, "RecordRefused", "RecordRefused: pod uid differs"))])
    s = story.status
    assert condition(s, "Succeeded") == ("False", "RecordRefused") and condition(s, "FaultInjected")[0] == "True"


def test_an_undo_that_fails_is_an_event_and_changes_no_timing() -> None:
    before, _ = replay(through_injection("node-kill"))
    story = tell(before.status, UndoFailed("DemoFailed: docker said no"), now=at(9), generation=1)
    assert [(e.type, e.reason) for e in story.events] == [("Warning", "UndoFailed")]
    assert story.status.injection is not None and story.status.injection.undone_at is None


# --- the diagnosis


def test_a_diagnosis_by_the_rules_says_why_claude_did_not_answer() -> None:
    d = diagnosis("rules", matches=False, fallback="ClaudeTimeout: no answer in 30s")
    story, _ = replay([*through_injection(), (5, Detected("x", "y", at(5), diagnosis=True)), (9, Diagnosed(d))])
    assert condition(story.status, "Diagnosed") == ("True", "RulesDiagnosed")
    note = story.events[-1]
    assert note.type == "Warning" and "does not match" in note.message
    assert note.message.endswith("(rules engine because ClaudeTimeout: no answer in 30s)")
    assert story.status.diagnosed_at == at(9)


@pytest.mark.parametrize("reason", ["DiagnosisError", "DiagnosisTimeout"])
def test_a_diagnosis_that_fails_is_a_condition_and_the_demo_goes_on(reason: str) -> None:
    story, phases = replay([*through_injection(), (5, Detected("x", "y", at(5), diagnosis=True)),
                            (9, DiagnosisFailed(reason, "x" * 500))])
    assert condition(story.status, "Diagnosed") == ("False", reason) and phases[-1] == "Recovering"
    c = cond.get(story.status.conditions, "Diagnosed")
    assert c is not None and len(c.message) == 300


# --- values, bounds, resumes


def test_telling_leaves_the_status_it_was_given_as_it_was() -> None:
    before, _ = replay(through_injection())
    frozen = before.status.model_dump()
    tell(before.status, Detected("x", "y", at(5), diagnosis=True), now=at(5), generation=1)
    assert before.status.model_dump() == frozen


def test_a_message_from_the_cluster_is_bounded() -> None:
    before, _ = replay(through_injection())
    story = tell(before.status, Looked("z" * 100_000, (), 0, ()), now=at(6), generation=1)
    assert len(story.status.message) <= MAX_MESSAGE


def test_a_look_keeps_the_message_unless_the_step_has_a_new_one_and_carries_the_timeline() -> None:
    before, _ = replay([*through_injection(), (5, Detected("x", "y", at(5), diagnosis=False))])
    v = Violation(invariant="x", subject="basic-tikv-1", message="y", first_seen=at(5))
    story = tell(before.status, Looked(None, (v,), 2, ()), now=at(6), generation=1)
    assert story.status.message == "detected in 2.0s by x" and story.status.violations == [v]
    assert story.status.violations_dropped == 2 and story.events == ()


def test_started_again_on_a_resumed_run_changes_nothing_and_posts_nothing() -> None:
    before, _ = replay([*through_injection(), (5, Detected("x", "y", at(5), diagnosis=True))])
    again = tell(before.status, Started("tidb-cluster/basic"), now=at(99), generation=1)
    assert again.status == before.status and again.events == ()


def test_each_story_records_the_generation_it_handled() -> None:
    story = told(ChaosDemoStatus(), [Started("tidb-cluster/basic")], now=T0, generation=4)
    assert story.status.observed_generation == 4 and all(c.observed_generation == 4 for c in story.status.conditions)


# --- resume: the watch carries on from the record at each phase

PLAN = WatchPlan(injected_at=NOW + 3, detection_seconds=120, recovery_seconds=600, stability_seconds=10,
                 target=TARGET, undo_after=30)
OK_TC = TidbOperatorState("True", "Ready", (("basic-tikv-0", "Up"), ("basic-tikv-1", "Up"), ("basic-tikv-2", "Up")))
DOWN_TC = TidbOperatorState("False", "StoreNotUp", (("basic-tikv-1", "Down"),))


def snap(t: float, tc: TidbOperatorState | None = OK_TC):  # type: ignore[no-untyped-def]
    s = healthy(tidb_operator=tc)
    stores = tuple(replace(st, last_heartbeat_ns=st.last_heartbeat_ns + int(t * 1e9)) for st in s.stores)
    return replace(s, taken_at=NOW + t, stores=stores)


def status_at(phase: str) -> ChaosDemoStatus:
    path: list[tuple[float, Happening]] = through_injection("node-kill")
    if phase in ("Diagnosing", "Undone", "Recovered"):
        path.append((5, Detected("x", "y", at(5), diagnosis=True)))
    if phase in ("Undone", "Recovered"):
        path.append((33, Undone("started kind node node-1 again", node_level=True)))
    if phase == "Recovered":
        path.append((60, RecoveredStory(at(50), 10)))
    return replay(path)[0].status


@pytest.mark.parametrize(("phase", "detected", "undone", "recovered"), [
    ("Detecting", False, False, None),
    ("Diagnosing", True, False, None),
    ("Undone", True, True, None),
    ("Recovered", True, True, NOW + 50),
])
def test_a_resumed_watch_starts_from_what_the_record_says(phase: str, detected: bool, undone: bool,
                                                          recovered: float | None) -> None:
    w = watch_from(status_at(phase), resumed=True)
    assert (w.detected, w.undone, w.recovered_at, w.resumed) == (detected, undone, recovered, True)


def test_a_watch_resumed_before_its_undo_undoes_and_one_resumed_after_does_not_undo_twice() -> None:
    before = step(watch_from(status_at("Diagnosing"), resumed=True), PLAN, [], snap(40))
    after = step(watch_from(status_at("Undone"), resumed=True), PLAN, [], snap(40))
    assert type(before.decision).__name__ == "UndoNow" and not isinstance(after.decision, type(before.decision))


def test_a_watch_resumed_after_recovery_waits_only_for_tidb_operator() -> None:
    w = watch_from(status_at("Recovered"), resumed=True)
    assert step(w, PLAN, [], snap(70)).decision == Agreed(NOW + 70, waited=False), "no wait: no Event to post"
    disagree = step(w, PLAN, [], snap(70, DOWN_TC))
    assert disagree.decision == AwaitAgreement("store of basic-tikv-1 Down")
    again = step(disagree.state, PLAN, [], snap(71, DOWN_TC))
    assert isinstance(again.decision, KeepWaiting) and not again.changed, "said once"
    agreed = step(again.state, PLAN, [], snap(72))
    assert agreed.decision == Agreed(NOW + 72, waited=True)


def test_recovery_leads_into_the_agreement_phase_on_the_next_look() -> None:
    state, decisions = watch_from(status_at("Undone"), resumed=False), []
    for t, tc in ((40, OK_TC), (45, OK_TC), (50, OK_TC), (51, DOWN_TC), (52, OK_TC)):
        s = step(state, PLAN, [], snap(t, tc))
        decisions.append(s.decision)
        state = s.state
    assert [type(d).__name__ for d in decisions] == ["KeepWaiting", "KeepWaiting", "Recovered", "AwaitAgreement",
                                                     "Agreed"]
    assert decisions[2] == Recovered(NOW + 40) and state.recovered_at == NOW + 40
    assert decisions[4] == Agreed(NOW + 52, waited=True)


def test_three_unread_looks_in_a_row_are_no_status_but_a_read_between_starts_the_count_again() -> None:
    w = replace(watch_from(status_at("Recovered"), resumed=False), resumed=False)
    decisions, state = [], w
    for t, tc in ((70, None), (71, None), (72, DOWN_TC), (73, None), (74, None), (75, None)):
        s = step(state, PLAN, [], snap(t, tc))
        decisions.append(type(s.decision).__name__)
        state = s.state
    assert decisions == ["KeepWaiting", "KeepWaiting", "AwaitAgreement", "KeepWaiting", "KeepWaiting",
                         "NoOperatorStatus"]
    assert isinstance(step(state, PLAN, [], snap(76, OK_TC)).decision, Agreed)


def test_tidb_operator_still_disagreeing_at_the_recovery_deadline_fails_the_demo_as_recovered() -> None:
    w = watch_from(status_at("Recovered"), resumed=False)
    s = step(w, PLAN, [], snap(604, DOWN_TC))
    assert isinstance(s.decision, Failed) and s.decision.reason == "TidbOperatorDisagrees"
    assert s.decision.recovered and "store of basic-tikv-1 Down" in s.decision.message
    assert isinstance(step(w, PLAN, [], snap(604, None)).decision, KeepWaiting), "no status is no disagreement"


# --- the SQL canary (issue 31): what TiDB's clients felt, in the status


def felt(*, failed: bool, breaches: tuple[str, ...] = ()) -> Felt:
    """What the canary would tell after a pause of store 2 (seconds on its clock; its 0 is T0)."""
    t = Tally()
    for n in range(400):  # 20 a second for 20 s, on 3 parts; part 1 (store 2's) fails from 8 s to 12 s
        at_, part = n / 20, n % 3
        bad = failed and part == 1 and 8 <= at_ < 12
        t.add(at_ + 0.01, not bad, 0.01, "9005" if bad else None, part)
    t.total(19, 3000, 3000)
    b = Budget(20, 0.5, None, 120)
    i = impact(t, baseline=(0, 5), injected=5, now=20, budget=b, window=3, led=(1,))
    return Felt(to_status(i, list(breaches), epoch0=NOW, injected=5, share=1 / 3),
                sighting(i, epoch0=NOW, injected=5))


def test_the_canary_is_told_before_the_injection_and_its_impact_lands_in_the_status() -> None:
    story, _ = replay([(0, Started("tidb-cluster/basic")), (1, TargetChosen(3, 3, TARGET)),
                       (1, CanaryStarted("chaosdemo_canary_x", 10, resumed=False)),
                       (12, Requested("process-pause")), (13, Injected("paused", at(13))),
                       (20, felt(failed=True))])
    assert reasons(story)[:3] == ["Started", "TargetSelected", "CanaryStarted"]
    s = story.status
    assert s.impact is not None and s.impact.failures == {"9005": 27}
    assert s.impact.affected_rows is not None and s.impact.affected_rows.failed == 27
    assert s.impact.other_rows is not None and s.impact.other_rows.failed == 0
    assert s.impact.bank_total_held is True and s.impact.affected_rows_share == pytest.approx(0.333)
    clients = next(o for o in s.observers if o.observer == "tidb-clients")
    assert clients.saw_fault_at == at(8.01) and clients.saw_fault_seconds == 3.0
    assert "9005 x27" in clients.what and clients.saw_end_at is not None


def test_the_clients_sighting_survives_the_looks_and_says_so_when_they_felt_nothing() -> None:
    story, _ = replay([*through_injection(), (6, felt(failed=False)),
                       (7, Looked(None, (), 0, ())), (8, Ended(True, "Succeeded", "ok"))])
    clients = [o for o in story.status.observers if o.observer == "tidb-clients"]
    assert len(clients) == 1 and clients[0].what == "never showed the fault"
    assert story.status.impact is not None and story.status.impact.longest_unavailable_seconds == 0.0


def test_a_broken_budget_is_in_the_impact_and_a_resumed_canary_says_what_was_lost() -> None:
    story, _ = replay([*through_injection(), (6, felt(failed=True, breaches=("a statement took 5.0 s",))),
                       (30, Ended(False, "BudgetExceeded", "what TiDB's clients felt broke the budget"))])
    assert story.status.impact is not None and story.status.impact.budget_breaches == ["a statement took 5.0 s"]
    assert condition(story.status, "Succeeded") == ("False", "BudgetExceeded")
    resumed, _ = replay([(0, CanaryStarted("chaosdemo_canary_x", 10, resumed=True))],
                        status=story.status.model_copy(update={"message": "before"}))
    assert reasons(resumed) == ["CanaryResumed"] and resumed.status.message == "before"


def test_the_rows_the_broken_store_led_are_kept_with_the_injection_and_through_every_look() -> None:
    """A restarted operator judges the same rows as the one that injected: read again later, a paused leader's
    rows would have a new leader, and their stalled statements would count against the others' 2 s bound."""
    story, _ = replay([(0, Started("tidb-cluster/basic")), (1, TargetChosen(3, 3, TARGET)),
                       (1, CanaryStarted("chaosdemo_canary_x", 10, resumed=False)),
                       (12, Requested("process-pause")), (12, RowsMarked(((10, 20),), 1 / 3)),
                       (13, Injected("paused", at(13)))])
    impact_ = story.status.impact
    assert impact_ is not None and [(r.first, r.end) for r in impact_.affected_ranges or []] == [(10, 20)]
    assert impact_.affected_rows_share == pytest.approx(1 / 3)
    later, _ = replay([(20, replace(felt(failed=True), impact=to_status(
        impact(Tally(), baseline=(0, 5), injected=5, now=6, budget=Budget(20, 0.5, None, 120), window=3),
        [], epoch0=NOW, injected=5, share=1 / 3, ranges=((10, 20),))))], status=story.status)
    assert later.status.impact is not None and later.status.impact.affected_ranges == impact_.affected_ranges


def test_a_canary_that_cannot_carry_on_after_a_restart_is_said_and_the_demo_goes_on() -> None:
    """A paused store may hold TiDB's own answers when a new leader resumes the demo: the fault must still be
    followed and undone, so the demo goes on without its canary and says so, in an Event and in the impact."""
    story, _ = replay([(0, CanaryStarted("chaosdemo_canary_x", 10, resumed=True,
                                         not_resumed="the SQL canary cannot use TiDB (timeout)"))])
    assert reasons(story) == ["CanaryNotResumed"]
    assert story.status.impact is not None and "could not carry on" in story.status.impact.note
    assert story.status.phase not in ("Failed", "Aborted")

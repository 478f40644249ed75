"""The no-fault control (action none): everything a demo does, nothing injected; judged for false alarms.
The pure step decides (quiet at the window's end, or a false alarm at the first breach, also after a restart)
and the pure story tells it."""

from __future__ import annotations

from dataclasses import replace

from chaosdemo.api.models import ChaosDemoStatus, TargetStatus
from chaosdemo.api.timestamps import iso
from chaosdemo.core.step import Failed, FalseAlarm, KeepWaiting, Quiet, WatchPlan, WatchState, step, watch_from
from chaosdemo.core.story import (
    ControlQuiet,
    DeadlinePassed,
    Detected,
    Ended,
    Happening,
    Injected,
    Requested,
    Started,
    Succeeded,
    TargetChosen,
    told,
)

from .helpers import NOW, healthy, pod

TARGET = TargetStatus(pod="basic-tikv-1", pod_uid="uid-basic-tikv-1", node="node-1", store_id="2",
                      selection="random among 3")
PLAN = WatchPlan(injected_at=NOW, detection_seconds=30, recovery_seconds=600, stability_seconds=10,
                 target=TARGET, control=True)


def at(t: float, **overrides: object):  # type: ignore[no-untyped-def]
    s = healthy(**overrides)
    stores = tuple(replace(st, last_heartbeat_ns=st.last_heartbeat_ns + int(t * 1e9)) for st in s.stores)
    return replace(s, taken_at=NOW + t, stores=stores)


def test_a_quiet_control_holds_at_the_end_of_its_window_and_not_before() -> None:
    state = WatchState()
    for t in (1, 10, 29.9):
        result = step(state, PLAN, [], at(t))
        assert isinstance(result.decision, KeepWaiting), t
        state = result.state
    assert isinstance(step(state, PLAN, [], at(30.5)).decision, Quiet)


def test_any_breach_in_a_control_is_a_false_alarm_never_a_detection() -> None:
    gone = at(4, pods=(pod("basic-tikv-0"), pod("basic-tikv-2")))
    result = step(WatchState(), PLAN, [], gone)
    assert isinstance(result.decision, FalseAlarm) and result.state.detected
    assert result.decision.breaches[0].invariant == "tikv-pods-ready"
    # the same look in a demo that injected something is its detection
    assert type(step(WatchState(), replace(PLAN, control=False), [], gone).decision).__name__ == "Detected"


def test_a_control_resumed_after_its_false_alarm_was_recorded_ends_failed_not_recovering() -> None:
    result = step(WatchState(detected=True), PLAN, [], at(40))
    assert isinstance(result.decision, Failed) and result.decision.reason == "FalseAlarm"
    assert not result.decision.recovered


def control_story(*tail: tuple[float, Happening]) -> ChaosDemoStatus:
    steps: list[tuple[float, Happening]] = [
        (0, Started("tidb-cluster/basic")), (1, TargetChosen(3, 3, TARGET)), (2, Requested("none")),
        (3, Injected("no-fault control: nothing injected (basic-tikv-1 would have been the target)", iso(NOW + 3))),
        *tail]
    status = ChaosDemoStatus()
    for t, h in steps:
        status = told(status, [h], now=iso(NOW + t)).status
    return status


def test_a_control_that_held_succeeds_saying_nothing_broke_and_nothing_was_injected() -> None:
    s = control_story((33, ControlQuiet(30)), (34, Succeeded()))
    assert s.phase == "Succeeded" and s.detected_at is None and s.recovered_at is None
    assert s.message == ("no-fault control held: no invariant broke in the 30s window, and nothing was injected")
    conds = {c.type: (c.status, c.reason) for c in s.conditions}
    assert conds["FaultInjected"] == ("True", "NoFaultControl")
    assert conds["FailureDetected"] == ("False", "NothingDetected")
    assert conds["Diagnosed"] == ("False", "NoFault")


def test_a_false_alarm_is_recorded_as_the_detection_it_was_and_fails_the_control() -> None:
    msg = "a no-fault control saw tikv-pods-ready break 2.0s into its window, though nothing was injected"
    s = control_story((5, Detected("tikv-pods-ready", "basic-tikv-1 does not exist", iso(NOW + 5), diagnosis=True,
                                   control=True)),
                      (6, Ended(False, "FalseAlarm", msg)))
    assert s.phase == "Failed" and s.detected_by == "tikv-pods-ready" and s.detection_seconds == 2.0
    conds = {c.type: (c.status, c.reason) for c in s.conditions}
    assert conds["Diagnosed"] == ("False", "NoFault"), "a false alarm is not sent to Claude"
    assert conds["Succeeded"] == ("False", "FalseAlarm")
    resumed = control_story((5, Detected("tikv-pods-ready", "x", iso(NOW + 5), diagnosis=False, control=True)),
                            (40, DeadlinePassed("FalseAlarm", True)))
    assert {c.type: c.message for c in resumed.conditions}["Recovered"] == "a no-fault control saw an invariant break"


def test_a_control_resumed_from_its_status_watches_on_as_a_control() -> None:
    status = control_story()
    assert watch_from(status, resumed=True).detected is False

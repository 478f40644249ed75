"""A ChaosDemoSuite's logic (core/suite.py, core/cron.py): which step's demo comes next, after the pause, what
each ended as, the totals and verdict, stopOnFailure, the schedule and the bounded history. Pure: the demos
are plain dicts as the API server returns them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import ValidationError

from chaosdemo.api.crd import build_suite_crd
from chaosdemo.api.models import FaultAction
from chaosdemo.api.suite import RUN_LABEL, SUITE_KIND, SUITE_LABEL, ChaosDemoSuiteSpec, ChaosDemoSuiteStatus
from chaosdemo.api.timestamps import iso, parse_iso
from chaosdemo.core import cron
from chaosdemo.core.suite import advance, demo_manifest, demo_name, not_created, run_of

REPO = Path(__file__).resolve().parents[2]
T0 = parse_iso("2026-12-07T10:00:00.000Z")
SUITE = {"metadata": {"name": "nightly", "namespace": "ops", "uid": "u-1"}}


def spec(**kw: Any) -> ChaosDemoSuiteSpec:
    steps = kw.pop("steps", [{"name": "control", "fault": {"action": "none"}}, {"name": "kill",
                             "fault": {"action": "pod-kill"}}, {"name": "pause", "fault": {"action": "process-pause"}}])
    return ChaosDemoSuiteSpec.model_validate({"cluster": {"name": "basic"}, "steps": steps, "pauseSeconds": 30, **kw})


def demo(name: str, phase: str, *, reason: str = "", finished: float | None = None, **status: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"phase": phase, "message": f"{name} is {phase}", **status}
    if reason:
        st["conditions"] = [{"type": "Succeeded", "status": "True" if phase == "Succeeded" else "False",
                             "reason": reason}]
    if finished is not None:
        st["finishedAt"] = iso(finished)
    return {"metadata": {"name": name}, "status": st}


def go(s: ChaosDemoSuiteSpec, status: ChaosDemoSuiteStatus, demos: list[dict[str, Any]], now: float):
    return advance(s, status, {d["metadata"]["name"]: d for d in demos}, suite="nightly", now=now, created=T0)


def test_a_suite_runs_its_steps_in_order_with_the_pause_between_and_a_verdict_at_the_end() -> None:
    s = spec()
    a = go(s, ChaosDemoSuiteStatus(), [], T0 + 1)
    assert a.create == 0 and a.status.run == 1 and a.status.phase == "Running"
    assert a.said == [("Normal", "RunStarted", "run 1 started: 3 steps")]
    first = demo("nightly-r1-control", "Detecting")
    a = go(s, a.status, [first], T0 + 2)
    assert a.create is None and a.status.steps[0].phase == "Running"
    assert a.status.steps[0].demo == "nightly-r1-control"
    done0 = demo("nightly-r1-control", "Succeeded", reason="NoFaultDetected", finished=T0 + 40)
    a = go(s, a.status, [done0], T0 + 45)
    assert a.create is None and a.wake_at == T0 + 70, "the next step waits for the pause after the last one ended"
    a = go(s, a.status, [done0], T0 + 70)
    assert a.create == 1
    kill = demo("nightly-r1-kill", "Succeeded", reason="Recovered", finished=T0 + 120, detectionSeconds=1.2,
                recoverySeconds=30.5, diagnosis={"matchesInjectedFault": True}, impact={"budgetBreaches": []})
    a = go(s, a.status, [done0, kill], T0 + 150)
    assert a.create == 2 and a.status.steps[1].detection_seconds == 1.2 and a.status.steps[1].diagnosis_matches
    assert a.status.steps[1].budget_held is True
    pause = demo("nightly-r1-pause", "Succeeded", reason="Recovered", finished=T0 + 200)
    a = go(s, a.status, [done0, kill, pause], T0 + 201)
    assert a.status.verdict == "Succeeded" and a.status.phase == "Succeeded" and a.done
    assert a.status.totals.passed == 3 and a.status.totals.failed == 0
    assert a.said == [("Normal", "RunSucceeded", "run 1 succeeded: 3 passed, 0 failed, 0 false alarms, 0 skipped")]
    assert a.ended == "Succeeded"
    again = go(s, a.status, [done0, kill, pause], T0 + 500)
    assert again.done and again.create is None, "a suite without a schedule runs once"


def test_a_false_alarm_on_a_control_fails_the_run_and_stop_on_failure_skips_the_rest() -> None:
    s = spec()
    status = go(s, ChaosDemoSuiteStatus(), [], T0).status
    alarm = demo("nightly-r1-control", "Failed", reason="FalseAlarm", finished=T0 + 20, detectedAt=iso(T0 + 10))
    a = go(s, status, [alarm], T0 + 21)
    assert a.status.verdict == "Failed" and a.create is None and a.done
    assert [x.phase for x in a.status.steps] == ["Failed", "Skipped", "Skipped"]
    assert a.status.steps[0].false_alarm and a.status.totals.false_alarms == 1 and a.status.totals.skipped == 2
    assert a.said[-1][:2] == ("Warning", "RunFailed") and a.ended == "Failed"


def test_without_stop_on_failure_every_step_runs_and_the_run_fails_on_one_failure() -> None:
    s = spec(stopOnFailure=False, pauseSeconds=0)
    status = go(s, ChaosDemoSuiteStatus(), [], T0).status
    failed = demo("nightly-r1-control", "Aborted", reason="ClusterNotHealthy", finished=T0 + 5)
    a = go(s, status, [failed], T0 + 6)
    assert a.create == 1, "the next step runs after a failed one"
    rest = [demo("nightly-r1-kill", "Succeeded", finished=T0 + 50),
            demo("nightly-r1-pause", "Failed", reason="BudgetExceeded", finished=T0 + 90,
                 impact={"budgetBreaches": ["no statement succeeded for 130 s"]})]
    a = go(s, a.status, [failed, *rest], T0 + 91)
    assert a.status.verdict == "Failed" and a.status.totals.model_dump() == {
        "passed": 1, "failed": 2, "false_alarms": 0, "skipped": 0}
    assert a.status.steps[2].budget_held is False and a.status.steps[0].reason == "ClusterNotHealthy"


def test_a_demo_that_could_not_be_created_fails_its_step_with_the_api_servers_words() -> None:
    s = spec(stopOnFailure=False, pauseSeconds=10)
    a = go(s, ChaosDemoSuiteStatus(), [], T0)
    refused = not_created(a.status, 0, "admission webhook denied: may not delete pods", T0 + 1)
    a = go(s, refused, [], T0 + 2)
    assert a.status.steps[0].phase == "Failed" and "may not delete pods" in a.status.steps[0].message
    assert a.create is None and a.wake_at == T0 + 11, "the pause counts from the refusal, not from every look"
    assert go(s, a.status, [], T0 + 11).create == 1


def test_a_running_demo_deleted_by_someone_fails_its_step_and_an_ended_one_stands() -> None:
    s = spec()
    status = go(s, ChaosDemoSuiteStatus(), [], T0).status
    running = go(s, status, [demo("nightly-r1-control", "Detecting")], T0 + 1).status
    gone = go(s, running, [], T0 + 2)
    assert gone.status.steps[0].reason == "DemoDeleted" and gone.status.verdict == "Failed"


def test_demos_are_named_by_run_and_step_owned_by_the_suite_and_carry_the_cluster() -> None:
    s = spec(steps=[{"name": "kill", "fault": {"action": "pod-kill"}, "target": {"pod": "basic-tikv-1"},
                     "canary": {"enabled": False}}])
    m = demo_manifest(SUITE, s, 4, 0)
    assert m["metadata"]["name"] == demo_name("nightly", 4, "kill") == "nightly-r4-kill"
    assert m["metadata"]["labels"] == {SUITE_LABEL: "nightly", RUN_LABEL: "4", "chaosdemo.dev/suite-step": "kill"}
    owner = m["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "u-1" and owner["kind"] == "ChaosDemoSuite" and owner["controller"] is True
    assert m["spec"]["cluster"]["name"] == "basic" and m["spec"]["target"]["pod"] == "basic-tikv-1"
    assert "name" not in m["spec"] and m["spec"]["canary"]["enabled"] is False
    assert run_of("nightly", "nightly-r12-kill") == 12
    assert run_of("nightly", "nightly-x-r1-kill") is None and run_of("nightly", "other-r1-kill") is None


def test_a_schedule_waits_for_its_time_starts_runs_and_keeps_a_bounded_history() -> None:
    s = spec(schedule="*/30 * * * *", historyLimit=2, pauseSeconds=0,
             steps=[{"name": "control", "fault": {"action": "none"}}])
    a = go(s, ChaosDemoSuiteStatus(), [], T0 + 60)
    assert a.status.phase == "Waiting" and a.wake_at == T0 + 1800 and a.create is None
    status = a.status
    for run in range(1, 5):
        start = T0 + 1800 * run
        a = go(s, status, [], start)
        assert a.status.run == run and a.create == 0 and a.prune_below == run - 1
        a = go(s, a.status, [demo(f"nightly-r{run}-control", "Succeeded", finished=start + 60)], start + 61)
        assert a.status.phase == "Waiting" and a.status.verdict == "Succeeded" and not a.done
        assert a.status.next_run_at == iso(start + 1800)
        status = a.status
    assert [h.run for h in status.history] == [3], "historyLimit 2: this run and the one before"


def test_a_schedule_that_never_fires_is_said_and_the_suite_stops() -> None:
    a = go(spec(schedule="0 0 31 2 *"), ChaosDemoSuiteStatus(), [], T0)
    assert a.done and a.status.phase == "Failed" and "never fires" in a.status.message


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("*/15 * * * *", "2026-12-07T10:07:30", "2026-12-07T10:15:00"),
    ("0 3 * * *", "2026-12-07T03:00:00", "2026-12-08T03:00:00"),
    ("30 2 * * 1-5", "2026-12-11T03:00:00", "2026-12-14T02:30:00"),  # a Friday: next is Monday
    ("0 0 1 * 0", "2026-12-02T00:00:00", "2026-12-06T00:00:00"),  # day-of-month OR Sunday, as cron does
    ("0 12 29 2 *", "2026-03-01T00:00:00", "2028-02-29T12:00:00"),
    ("0 0 * * 7", "2026-12-07T00:00:00", "2026-12-13T00:00:00"),  # 7 is Sunday too
])
def test_cron_finds_the_next_time_as_cron_does(expr: str, after: str, expected: str) -> None:
    def ts(text: str) -> float:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()

    assert cron.parse(expr).next_after(ts(after)) == ts(expected)


@pytest.mark.parametrize("expr", ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "5-1 * * * *"])
def test_a_malformed_schedule_is_refused_with_what_is_wrong(expr: str) -> None:
    with pytest.raises(ValueError, match=r"cron|five fields"):
        cron.parse(expr)


def test_the_suite_crd_freezes_its_spec_bounds_its_name_and_its_steps() -> None:
    schema = build_suite_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = [r["rule"] for r in schema["x-kubernetes-validations"]]
    assert "self.spec == oldSelf.spec" in rules and "self.metadata.name.size() <= 40" in rules
    steps = schema["properties"]["spec"]["properties"]["steps"]
    assert steps["maxItems"] == 20 and steps["items"]["properties"]["name"]["maxLength"] == 12
    with pytest.raises(ValidationError):
        spec(schedule="every night")
    with pytest.raises(ValidationError):
        spec(steps=[])


def test_the_game_day_sample_runs_every_fault_action_between_controls() -> None:
    doc = yaml.safe_load((REPO / "deploy" / "samples" / "suites" / "game-day.yaml").read_text())
    assert doc["kind"] == SUITE_KIND
    s = ChaosDemoSuiteSpec.model_validate(doc["spec"])
    actions = [step.fault.action for step in s.steps]
    assert set(actions) == set(get_args(FaultAction)) and actions[0] == actions[-1] == "none"
    assert max(len(demo_name(doc["metadata"]["name"], 999999, step.name)) for step in s.steps) <= 63


def test_a_run_that_ends_is_counted_by_verdict_with_its_false_alarms() -> None:
    from chaosdemo.clients.metrics import Metrics

    m = Metrics()
    m.suite_ended("Failed", 1)
    m.suite_ended("Succeeded", 0)
    assert m.registry.get_sample_value("chaosdemo_suite_runs_total", {"verdict": "Failed"}) == 1
    assert m.registry.get_sample_value("chaosdemo_suite_runs_total", {"verdict": "Succeeded"}) == 1
    assert m.registry.get_sample_value("chaosdemo_suite_false_alarms_total") == 1


def test_times_in_the_status_that_cannot_be_read_do_not_stop_the_suite() -> None:
    s = spec(pauseSeconds=0)
    status = go(s, ChaosDemoSuiteStatus(), [], T0).status.model_copy(update={"started_at": "yesterday"})
    a = go(s, status, [], T0 + 1)
    assert a.create == 0, "a started_at nobody can read counts as now"

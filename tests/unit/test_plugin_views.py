"""What `kubectl chaosdemo` shows, from ChaosDemo objects as the API server sends them."""

import datetime as dt
import re

from chaosdemo.plugin.views import Follower, deadline, lanes, report, rows, sightings

T0 = "2026-11-25T08:00:00.000Z"


def demo(phase: str, violations: list[dict] | None = None, **status: object) -> dict:
    return {"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
            "metadata": {"name": "d", "namespace": "ns", "creationTimestamp": T0},
            "spec": {"cluster": {"name": "basic"}, "fault": {"action": "pod-delete"},
                     "timeouts": {"detectionSeconds": 30, "recoverySeconds": 90}},
            "status": {"phase": phase, "violations": violations or [], **status}}


def at(seconds: float) -> dt.datetime:
    return dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def test_a_follower_announces_each_stage_once_and_each_invariant_as_it_breaks_and_holds():
    f = Follower()
    broken = {"invariant": "tikv-pods-ready", "subject": "basic-tikv-1", "message": "not Ready", "firstSeen": T0}
    seen = []
    for obj in (demo("Pending"), demo("Detecting", injectedAt=T0), demo("Detecting", injectedAt=T0),
                demo("Diagnosing", [broken], injectedAt=T0),
                demo("Recovering", [{**broken, "cleared": "2026-11-25T08:00:05Z"}], injectedAt=T0),
                demo("Succeeded", [{**broken, "cleared": "2026-11-25T08:00:05Z"}], message="recovered in 5s")):
        seen += [(n.kind, n.phase or n.text) for n in f.update(obj)]
    assert seen == [("stage", "Pending"), ("stage", "Detecting"), ("stage", "Diagnosing"),
                    ("broken", "tikv-pods-ready (basic-tikv-1): not Ready"), ("stage", "Recovering"),
                    ("holds", "tikv-pods-ready (basic-tikv-1) holds again"), ("stage", "Succeeded"),
                    ("message", "recovered in 5s")]


def test_a_breach_that_opened_and_cleared_between_two_looks_is_still_shown():
    blip = {"invariant": "tikv-pods-ready", "subject": "basic-tikv-2", "message": "terminating",
            "firstSeen": T0, "cleared": "2026-11-25T08:00:01Z"}
    f = Follower()
    f.update(demo("Detecting", injectedAt=T0))
    notes = f.update(demo("Recovering", [blip], injectedAt=T0))
    assert [(n.kind, n.text) for n in notes if n.kind != "stage"] == [
        ("broken", "tikv-pods-ready (basic-tikv-2): terminating (held again by 2026-11-25T08:00:01Z)")]
    assert not f.open and f.update(demo("Recovering", [blip], injectedAt=T0)) == []


def test_the_deadline_in_force_is_detection_then_recovery_counted_from_the_injection():
    assert deadline(demo("Pending"), at(1)) is None
    assert deadline(demo("Detecting", injectedAt=T0), at(12)) == ("detection", 18.0)
    assert deadline(demo("Recovering", injectedAt=T0), at(12)) == ("recovery", 78.0)
    assert deadline(demo("Recovering", injectedAt=T0), at(100)) == ("recovery", -10.0)
    assert deadline(demo("Succeeded", injectedAt=T0), at(12)) is None


def test_list_rows_carry_outcome_times_and_the_diagnosis_verdict():
    obj = demo("Succeeded", detectionSeconds=0.012, recoverySeconds=18.27, detectedBy="tikv-pods-ready",
               target={"pod": "basic-tikv-1"}, diagnosis={"faultClass": "pod-failure", "engine": "rules",
                                                          "matchesInjectedFault": True})
    (row,) = rows([obj], at(300))
    assert row == {"namespace": "ns", "name": "d", "action": "pod-delete", "target": "basic-tikv-1",
                   "phase": "Succeeded", "detectedBy": "tikv-pods-ready", "detect": "0.01", "recover": "18.3",
                   "diagnosis": "pod-failure matches (rules)", "age": "5m"}


def test_the_report_tells_the_whole_story_and_keeps_cluster_text_inert():
    obj = demo("Succeeded", [{"invariant": "pd-stores-up", "subject": "store 3", "message": "a|b <script>",
                              "firstSeen": "2026-11-25T08:00:01Z", "cleared": "2026-11-25T08:00:09Z"}],
               startedAt="2026-11-25T07:59:59.5Z", injectedAt=T0, detectedAt="2026-11-25T08:00:00.012Z",
               recoveredAt="2026-11-25T08:00:18Z", finishedAt="2026-11-25T08:00:18.5Z", detectionSeconds=0.012,
               recoverySeconds=18.0, conditions=[{"type": "Succeeded", "status": "True", "reason": "Succeeded",
                                                  "message": "ok"}],
               diagnosis={"summary": "pod deleted", "engine": "claude", "model": "claude-x",
                          "faultClass": "pod-failure", "matchesInjectedFault": True,
                          "grading": "class and pod agree", "evidence": ["uid changed"], "recommendedActions": []})
    md = report(obj, [{"lastTimestamp": T0, "type": "Warning", "reason": "FaultInjected", "message": "deleted"}])
    assert md.startswith("# ChaosDemo ns/d: Succeeded")
    assert "| 2026-11-25T08:00:00.012Z | +0.01 | failure detected |" in md
    assert "| 2026-11-25T07:59:59.5Z | -0.50 | the operator took it up |" in md
    assert "a\\|b \\<script\\>" in md and "<script>" not in md
    assert "- engine: claude (claude-x)" in md and "matches (class and pod agree)" in md
    assert "| Warning | FaultInjected | deleted |" in md
    assert "- none given" in md  # no recommended actions


def test_the_report_and_the_summary_say_who_saw_the_fault_when():
    observers = [{"observer": "kubernetes", "what": "never showed the fault"},
                 {"observer": "pd", "sawFaultSeconds": 18.2, "what": "store 2 Disconnected",
                  "sawEndSeconds": 24.0},
                 {"observer": "chaosdemo", "sawFaultSeconds": 0.61, "what": "tikv-stores-answer broke",
                  "sawEndSeconds": 31.5}]
    obj = demo("Succeeded", [], injectedAt=T0, observers=observers)
    assert sightings(obj["status"]) == [("Kubernetes", "never", "never showed the fault", ""),
                                        ("PD", "+18.20 s", "store 2 Disconnected", "+24.00 s"),
                                        ("ChaosDemo", "+0.61 s", "tikv-stores-answer broke", "+31.50 s")]
    md = report(obj, [])
    assert "| PD | +18.20 s | store 2 Disconnected | +24.00 s |" in md
    assert "| Kubernetes | never | never showed the fault |  |" in md


def test_lanes_draw_each_observer_and_each_breach_over_the_demos_time():
    observers = [{"observer": "kubernetes", "what": "never showed the fault"},
                 {"observer": "pd", "sawFaultSeconds": 10.0, "sawEndSeconds": 20.0},
                 {"observer": "chaosdemo", "sawFaultSeconds": 0.6, "sawEndSeconds": 30.0}]
    violations = [{"invariant": "tikv-stores-answer", "subject": "basic-tikv-1", "firstSeen": "2026-11-25T08:00:00.6Z",
                   "cleared": "2026-11-25T08:00:20Z"}]
    obj = demo("Succeeded", violations, injectedAt=T0, finishedAt="2026-11-25T08:00:40Z", observers=observers)
    drawn = dict(lanes(obj["status"], at(0), width=40))  # 40 s over 40 cells: one second each
    assert drawn["Kubernetes"] == "." * 40
    assert drawn["PD"] == "." * 10 + "#" * 10 + "." * 20
    assert drawn["ChaosDemo"] == "." + "#" * 29 + "." * 10
    assert drawn["tikv-stores-answer basic-tikv-1"] == "." + "#" * 19 + "." * 20
    assert drawn[""].startswith("0 s") and drawn[""].endswith("40 s")
    assert lanes({"phase": "Pending"}, at(0)) == []


# --- issue 30: a report shows what the operator wrote, escaped for where it goes

HOSTILE = "fine\r[click](http://evil.example) ![x](http://evil.example/a.png) \x1b[2J\x1b]0;owned\x07 <b>&amp; # h"


def test_every_cell_of_a_markdown_report_is_inert_whatever_the_event_says() -> None:
    obj = demo("Succeeded", [])
    ev = {"lastTimestamp": "2026-11-25T08:00:00.000Z", "type": "Warning|<img src=x>", "reason": "[r](http://e)",
          "message": HOSTILE, "involvedObject": {"uid": "uid-1"}, "reportingComponent": "chaosdemo.dev/operator"}
    md = report(obj, [ev])
    line = next(x for x in md.splitlines() if "2026-11-25T08:00:00.000Z" in x)
    assert line.count(" | ") == 3, "one row, four cells: no pipe or newline got through"
    for active in (r"(?<!\\)\]\(", r"(?<!\\)<img", r"(?<!\\)<b", r"(?<!\\)&amp;", "\x1b", "\r", "\x07"):
        assert not re.search(active, line), active
    assert "fine \\[click\\](http://evil.example) !\\[x\\]" in line


def test_text_at_a_lines_start_cannot_become_a_heading_or_a_list() -> None:
    from chaosdemo.plugin.views import _md

    assert _md("# not a heading") == "\\# not a heading"
    assert _md("- not a list") == "\\- not a list" and _md("1. nor this") == "1\\. nor this"
    assert _md("a - b (c)") == "a - b (c)", "only what Markdown would read is escaped"
    assert _md("0.008 s") == "0.008 s" and _md("-5") == "-5", "a number is no list"


def test_control_characters_are_gone_from_everything_the_plugin_shows() -> None:
    from chaosdemo.plugin.views import inert

    obj = inert({"status": {"message": "ok\x1b[31m red\x9b2J", "observers": [{"what": "a\x00b"}]}, "n": 3})
    assert obj == {"status": {"message": "ok[31m red2J", "observers": [{"what": "ab"}]}, "n": 3}


def test_only_the_operators_events_on_this_very_demo_are_reported() -> None:
    from chaosdemo.plugin.views import ours

    mine = {"involvedObject": {"uid": "u1"}, "reportingComponent": "chaosdemo.dev/operator", "reason": "Started"}
    legacy = {"involvedObject": {"uid": "u1"}, "source": {"component": "chaosdemo-operator"}, "reason": "Old"}
    forged = {"involvedObject": {"uid": "u1"}, "reportingComponent": "someone-else", "reason": "Forged"}
    earlier = {**mine, "involvedObject": {"uid": "u0"}, "reason": "AnEarlierDemoOfThatName"}
    assert [e["reason"] for e in ours([mine, legacy, forged, earlier], "u1")] == ["Started", "Old"]
    assert ours([mine], "") == []


def test_the_report_says_what_tidbs_clients_felt_when_a_canary_ran() -> None:
    impact = {"baselineThroughput": 20.0, "baselineP99Seconds": 0.005, "lowestThroughputShare": 0.65,
              "worstP99Seconds": 0.012, "slowestStatementSeconds": 5.0, "failures": {"timeout": 27},
              "longestUnavailableSeconds": 0.0, "affectedRowsShare": 0.333,
              "affectedRows": {"ok": 100, "failed": 27}, "otherRows": {"ok": 300, "failed": 0},
              "bankTotalHeld": True, "budgetBreaches": [], "note": "# not a heading"}
    obj = {"metadata": {"name": "d", "namespace": "t"}, "spec": {}, "status": {"phase": "Succeeded",
                                                                              "impact": impact}}
    text = report(obj, [])
    assert "## What TiDB's clients felt" in text and "| failures | timeout x27 |" in text
    assert "| users served again | never stopped being served |" in text
    assert "\\# not a heading" in text, "cluster text stays inert"
    assert "What TiDB's clients felt" not in report({**obj, "status": {"phase": "Succeeded"}}, [])

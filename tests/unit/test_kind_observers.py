"""Each observer's first sight of a fault, from the rows the kind tier's reader keeps (pure)."""

from __future__ import annotations

from chaosdemo_local.kind.observers import Row, sights

POD, UID = "basic-tikv-1", "uid-1"


def row(at: float, *, tc: str = "Up", ready: str = "True/Ready", pd: str = "Up",
        pod: tuple[bool, int, str, bool] | None = (True, 0, UID, False)) -> Row:
    return Row(at=at, tc_ready=ready, tc_stores={POD: tc}, failure_stores=0, replicas=3, pd_stores={POD: pd},
               pods={} if pod is None else {POD: pod})


def test_a_paused_store_is_seen_by_pd_then_tidb_operator_and_never_by_kubernetes() -> None:
    rows = [row(0), row(5), row(18, pd="Disconnected"), row(24, pd="Disconnected", tc="Disconnected",
                                                             ready="False/TiKVStoreNotUp"),
            row(30, tc="Disconnected", ready="False/TiKVStoreNotUp"), row(40)]
    seen = sights(rows, POD, UID, since=1)
    assert seen["kubernetes"].first is None
    assert (seen["pd"].first, seen["pd"].over, seen["pd"].what) == (18, 30, "store Disconnected")
    assert (seen["tidb-operator"].first, seen["tidb-operator"].over) == (24, 40)


def test_a_restart_missed_between_two_reads_is_still_seen_and_over_at_once() -> None:
    rows = [row(0), row(3, pod=(True, 1, UID, False))]
    seen = sights(rows, POD, UID, since=1)["kubernetes"]
    assert (seen.first, seen.over, seen.what) == (3, 3, "container restarted")


def test_a_replaced_pod_is_over_once_the_new_one_is_ready() -> None:
    rows = [row(0), row(1, pod=(True, 0, UID, True)), row(2, pod=None), row(3, pod=(False, 0, "uid-2", False)),
            row(9, pod=(True, 0, "uid-2", False))]
    seen = sights(rows, POD, UID, since=0.5)["kubernetes"]
    assert (seen.first, seen.over, seen.what) == (1, 9, "pod being deleted")


def test_reads_before_the_injection_do_not_count() -> None:
    rows = [row(0, pd="Disconnected"), row(2), row(4)]
    assert sights(rows, POD, UID, since=1)["pd"].first is None


def test_the_kind_bench_sets_each_observer_beside_ours_and_counts_the_runs_it_never_saw() -> None:
    from chaosdemo_local.bench.kind_bench import summarize, table

    def run(ours: float, pd: float | None, tc: float | None) -> dict[str, object]:
        return {"phase": "Succeeded", "ours": ours, "recovered": 50.0, "detectedBy": "tikv-stores-answer",
                "matches": True, "kubernetes": None, "pd": pd, "tidb-operator": tc}

    s = summarize([run(0.5, 20.0, 25.0), run(1.0, 19.0, None), run(0.6, None, None),
                   {"phase": "Failed", "ours": None, "recovered": None, "detectedBy": None, "matches": None}])
    assert (s["runs"], s["succeeded"], s["diagnosed"]) == (4, 3, 3)
    assert (s["ours"], s["oursMax"]) == (0.6, 1.0)
    assert (s["pd"], s["pdRatio"], s["pdNever"]) == (19.5, 29.5, 1)  # ratios 40 and 19
    assert (s["tidb-operatorNever"], s["kubernetesNever"]) == (2, 3) and "kubernetes" not in s
    text = table({"date": "d", "machine": "m", "runs": 4, "hold": 45, "actions": {"process-pause": s}})
    row = "| process-pause | 0.60 s (1.00) | tikv-stores-answer | never (3 of 3) | 19.5 s (29.5x, never in 1) |"
    assert row in text


def test_the_kind_bench_sets_what_tidbs_clients_felt_beside_the_observers() -> None:
    from chaosdemo_local.bench.kind_bench import clients, summarize, table

    def run(first: float | None, unavailable: float, served: float | None) -> dict[str, object]:
        st = {"impact": {"longestUnavailableSeconds": unavailable, "servedAgainSeconds": served, "bankTotalHeld": True,
                         "failures": {"timeout": 3} if first is not None else {}, "lowestThroughputShare": 0.6},
              "observers": [{"observer": "tidb-clients", "sawFaultSeconds": first}]}
        return {"phase": "Succeeded", "ours": 1.0, "recovered": 50.0, "detectedBy": "tikv-stores-answer",
                "matches": True, **clients(st)}

    s = summarize([run(2.0, 0.5, 18.0), run(4.0, 1.5, 25.0), run(None, 0.0, None)])
    assert s["clients"] == {"runs": 3, "failedIn": 2, "first": 3.0, "unavailable": 0.5, "servedAgain": 25.0,
                            "lowestShare": 0.6, "bankHeld": True}
    text = table({"date": "d", "machine": "m", "runs": 3, "hold": 45, "actions": {"pod-kill": s}})
    assert "| pod-kill | 3.0 s | 2 of 3 | 0.5 s | 25 s | 60% | held |" in text


def test_the_kind_bench_counts_the_false_alarms_of_its_live_controls() -> None:
    from chaosdemo_local.bench.kind_bench import controls_summary, table

    held = {"phase": "Succeeded", "detectedBy": None, "message": "no-fault control held: ..."}
    alarm = {"phase": "Failed", "detectedBy": "pd-store-heartbeats-fresh", "message": "a no-fault control saw ..."}
    refused = {"phase": "Aborted", "detectedBy": None, "message": "ClusterUnhealthy: ..."}
    c = controls_summary([held, alarm, held, refused], 60)
    assert (c["runs"], c["falseAlarms"], c["notRun"], c["rate"]) == (4, 1, 1, 0.25)
    text = table({"date": "d", "machine": "m", "runs": 1, "hold": 45, "actions": {}, "controls": c})
    assert "**1 false alarm(s) in 4** (pd-store-heartbeats-fresh); 1 did not run to their end" in text


def test_the_kind_bench_reports_a_suites_steps_and_its_controls_false_alarms() -> None:
    from chaosdemo_local.bench.kind_bench import table

    def step(name: str, action: str, phase: str = "Succeeded", **kw: object) -> dict[str, object]:
        return {"name": name, "action": action, "phase": phase, "reason": kw.get("reason", ""),
                "detectionSeconds": kw.get("det"), "recoverySeconds": kw.get("rec"),
                "diagnosisMatches": kw.get("match"), "budgetHeld": kw.get("held"), "falseAlarm": kw.get("alarm", False)}

    suite = {"file": "deploy/samples/suites/game-day.yaml", "date": "d", "verdict": "Failed",
             "totals": {"passed": 2, "failed": 1, "falseAlarms": 1, "skipped": 1}, "controls": 2, "falseAlarms": 1,
             "changed": ["step node-kill: aimed at basic-tikv-2 (its node holds neither PD nor tidb-operator)"],
             "steps": [step("control-1", "none"), step("pod-kill", "pod-kill", det=0.05, rec=19.1, match=True,
                                                                 held=True),
                       step("control-2", "none", "Failed", reason="FalseAlarm", det=3.0, alarm=True),
                       step("node-kill", "node-kill", "Skipped")]}
    text = table({"date": "d", "machine": "m", "runs": 1, "hold": 45, "actions": {}, "suite": suite})
    assert "run once by `make bench-kind SUITE=deploy/samples/suites/game-day.yaml`" in text
    assert "**Failed**, 2 passed, 1 failed, 1 skipped" in text and "**1 false alarm(s) in 2**" in text
    assert "Changed from the file: step node-kill: aimed at basic-tikv-2" in text
    assert "| pod-kill | pod-kill | Succeeded | 0.05 | 19.1 | yes | yes |  |" in text
    assert "| control-2 | none | Failed FalseAlarm | 3.0 |  |  |  | YES |" in text

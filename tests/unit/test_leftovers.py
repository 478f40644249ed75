"""The local tier's end-of-test check, on states written here: what counts as left behind, and what not."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from chaosdemo_local.cluster.leftovers import TierState, left_behind, operator_pids

BEFORE = TierState(demos={}, namespaces={"default": "Active", "tidb-cluster": "Active"},
                   leases={"default/chaosdemo-operator": ""}, rbac={"Role tidb-cluster/x": ""},
                   ledger={}, operators={10: "python -m chaosdemo run"},
                   containers={"chaosdemo-worker": "running", "chaosdemo-worker2": "running"})


def after(**changes: object) -> TierState:
    return TierState(**{**BEFORE.__dict__, **changes})  # type: ignore[arg-type]


def test_the_tier_as_it_was_is_clean() -> None:
    assert left_behind(BEFORE, after(), shared={10}) == []


def test_each_kind_of_leftover_is_named() -> None:
    left = left_behind(BEFORE, after(
        demos={"t-a/d": "phase Aborted, finalizers ['chaosdemo.dev/finalizer'], being deleted"},
        namespaces={**BEFORE.namespaces, "t-a": "Terminating"},
        leases={"default/chaosdemo-operator": "host-77-abc123", "tidb-cluster/chaosdemo-basic": "t-a/d/uid"},
        rbac={**BEFORE.rbac, "ClusterRole chaosdemo-operator": ""},
        ledger={"default/t-a.d.uid": "node-kill chaosdemo-worker"},
        operators={10: "python -m chaosdemo run", 77: "python -m chaosdemo run --verbose"},
        containers={"chaosdemo-worker": "exited", "busybox-1": "running"},
        unhealthy="2/3 TiKV pods Ready"), shared={10})
    assert left == [
        "ChaosDemo t-a/d (phase Aborted, finalizers ['chaosdemo.dev/finalizer'], being deleted)",
        "namespace t-a (Terminating)",
        "Lease tidb-cluster/chaosdemo-basic held by t-a/d/uid",
        "ClusterRole chaosdemo-operator",
        "undo-ledger entry default/t-a.d.uid: node-kill chaosdemo-worker",
        "operator process 77: python -m chaosdemo run --verbose",
        "container busybox-1 (running), made by the test",
        "container chaosdemo-worker exited, running before the test",
        "node container chaosdemo-worker2 gone",
        "the cluster is not healthy again: 2/3 TiKV pods Ready",
    ], "the leader Lease of a live operator (pid 77) is that operator's: the process is what is named"


def test_a_leader_lease_of_a_dead_operator_is_left_and_one_handed_back_is_not() -> None:
    dead = after(leases={"default/chaosdemo-operator": "host-1-2-404-abcdef"})
    assert left_behind(BEFORE, dead, shared={10}) == ["Lease default/chaosdemo-operator held by host-1-2-404-abcdef"]
    shared_restarted = after(leases={"default/chaosdemo-operator": "host-11-abcdef"},
                             operators={11: "python -m chaosdemo run"})
    assert left_behind(BEFORE, shared_restarted, shared={11}) == []


def test_what_was_there_before_is_not_the_tests_doing() -> None:
    dirty = after(demos={"old/d": "phase Succeeded, finalizers []"}, unhealthy="PD simulator not answering")
    assert left_behind(dirty, dirty, shared={10}) == []


def test_only_this_runs_operators_are_counted_never_another_runs() -> None:
    """On the real /proc: a process shaped like an operator below this one is ours; below another, it is not."""
    fake = [sys.executable, "-c", "import time; time.sleep(60)", "-m", "chaosdemo", "run"]  # argv of an operator
    other_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ours = subprocess.Popen(fake)
    try:
        deadline = time.monotonic() + 30  # until the child has exec'd (a busy machine takes its time)
        while Path(f"/proc/{ours.pid}/cmdline").read_bytes().split(b"\0")[-4:-1] != [b"-m", b"chaosdemo", b"run"]:
            assert time.monotonic() < deadline, "the child never became the fake operator"
            time.sleep(0.05)
        assert ours.pid in operator_pids()
        assert ours.pid not in operator_pids(root=other_run.pid), "another run's check must not see it"
    finally:
        for p in (ours, other_run):
            p.kill()
            p.wait()
    assert ours.pid not in operator_pids()


def test_a_namespace_on_its_way_out_with_no_demo_left_takes_what_is_in_it_along() -> None:
    """Deleting even an empty namespace takes 5.3 s here: the caller checks later that it is gone."""
    going = after(namespaces={**BEFORE.namespaces, "t-b": "Terminating"},
                  rbac={**BEFORE.rbac, "Role t-b/status-prober": "", "RoleBinding t-b/status-prober": ""},
                  leases={**BEFORE.leases, "t-b/x": "someone"})
    assert left_behind(BEFORE, going, shared={10}) == []
    active = after(namespaces={**BEFORE.namespaces, "t-b": "Active"}, rbac=going.rbac)
    assert left_behind(BEFORE, active, shared={10}) == [
        "namespace t-b (Active)", "Role t-b/status-prober", "RoleBinding t-b/status-prober"]


def test_a_scheduler_whose_cache_went_corrupt_during_the_test_is_named() -> None:
    assert left_behind(BEFORE, after(scheduler_corrupt=1), shared={10}) == [
        "kube-scheduler logged 'Scheduler cache is corrupted': from then on it may never schedule a pod again"]
    assert left_behind(after(scheduler_corrupt=1), after(scheduler_corrupt=1), shared={10}) == []

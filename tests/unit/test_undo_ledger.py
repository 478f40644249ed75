"""Issue 20, finding 9: the operator's own record of what it must undo (pure half)."""

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace

from chaosdemo.api.settings import Settings
from chaosdemo.clients.metrics import Metrics
from chaosdemo.core.undo import UndoEntry, in_order, orphaned, overdue
from chaosdemo.run.deps import Deps
from chaosdemo.service.reconciler import reconcile

ENTRY = UndoEntry(action="node-kill", demo="tenant/nk/uid-1", cluster_ns="tidb-cluster", pod="basic-tikv-1",
                  pod_uid="p1", node="kind-worker2", since="2026-12-02T22:00:00.000Z")


def demo(uid: str = "uid-1", phase: str = "Recovering", deleting: bool = False) -> dict:
    meta = {"uid": uid, **({"deletionTimestamp": "2026-12-02T22:01:00Z"} if deleting else {})}
    return {"metadata": meta, "status": {"phase": phase}}


def test_an_entry_reads_back_as_written_and_its_key_is_a_configmap_key():
    assert UndoEntry.parse(ENTRY.text()) == ENTRY
    assert ENTRY.key == "tenant_nk_uid-1"


def test_text_the_operator_did_not_write_is_never_acted_on():
    for bad in ("", "{}", "[1]", '{"action": "node-kill"}', ENTRY.text().replace("kind-worker2", "a b"),
                ENTRY.text().replace("tenant/nk/uid-1", "tenant-nk"), ENTRY.text().replace("node-kill", "rm-rf")):
        assert UndoEntry.parse(bad) is None, bad


def test_an_entry_is_the_operators_to_undo_once_its_demo_is_gone_ended_or_replaced():
    assert orphaned(ENTRY, None)
    assert orphaned(ENTRY, demo(phase="Failed"))
    assert orphaned(ENTRY, demo(phase="Succeeded"))
    assert orphaned(ENTRY, demo(uid="another-demo-of-that-name"))


def test_a_running_or_deleting_demo_undoes_its_own_fault():
    assert not orphaned(ENTRY, demo())
    assert not orphaned(ENTRY, demo(phase="Pending"))
    assert not orphaned(ENTRY, demo(phase="Failed", deleting=True)), "its deletion handler restores it"


# --- issue 30: the due time, and one entry that cannot be undone holds back no other

DUE = datetime(2026, 12, 2, 22, 0, 30, tzinfo=UTC).timestamp()
HELD = UndoEntry(**{**ENTRY.__dict__, "due": "2026-12-02T22:00:30.000Z"})


def test_an_entry_records_when_its_undo_is_due_and_older_entries_still_read():
    assert UndoEntry.parse(HELD.text()) == HELD
    old = {k: v for k, v in json.loads(ENTRY.text()).items() if k != "due"}
    assert UndoEntry.parse(json.dumps(old)) == ENTRY, "an entry written before the due time was kept"
    assert UndoEntry.parse(HELD.text().replace("2026-12-02T22:00:30.000Z", "soon")) is None


def test_an_overdue_entry_is_undone_whatever_its_demo_or_kopf_says():
    for running in (demo(), demo(phase="Failed", deleting=True), demo(phase="Pending")):
        assert not orphaned(HELD, running, DUE + 59), "the demo's own run still has its grace"
        assert orphaned(HELD, running, DUE + 61), "past it, a forged annotation or status keeps nothing in place"
    assert not overdue(ENTRY, DUE + 10_000), "an entry without a due time is left to its demo, as before"


def test_node_kill_entries_are_undone_first_then_by_due_time():
    pause = UndoEntry(**{**HELD.__dict__, "action": "process-pause", "demo": "a/p/u1", "due": "2026-12-02T21:00:00Z"})
    late_node = UndoEntry(**{**HELD.__dict__, "demo": "b/n/u2", "due": "2026-12-02T23:00:00Z"})
    assert in_order([pause, late_node, HELD]) == [HELD, late_node, pause]


class InMemoryLedger:
    """STAND-IN for the ledger ConfigMap (clients/kube/ledger.py): entries by key, and the keys dropped."""

    def __init__(self, entries: list[UndoEntry]) -> None:
        self.data = {e.key: e.text() for e in entries}

    async def entries(self, namespace: str) -> dict[str, str]:
        return dict(self.data)

    async def drop(self, namespace: str, key: str) -> None:
        self.data.pop(key, None)


class Undoer:
    """STAND-IN for a fault: its undo fails on the nodes in ``failing``, and says what it undid."""

    def __init__(self, failing: set[str], undone: list[str]) -> None:
        self.failing, self.undone = failing, undone

    async def undo(self, namespace: str, target: object) -> str:
        node = target.node  # type: ignore[attr-defined]
        if node in self.failing:
            raise RuntimeError(f"docker start {node}: no such container")
        self.undone.append(node)
        return f"started {node}"


def test_an_entry_that_cannot_be_undone_does_not_keep_another_tenants_node_down():
    stuck = UndoEntry(**{**HELD.__dict__, "demo": "a/stuck/u1", "node": "kind-worker", "due": "2026-12-02T21:00:00Z"})
    other = UndoEntry(**{**HELD.__dict__, "demo": "b/other/u2", "node": "kind-worker3"})
    ledger, metrics, undone = InMemoryLedger([stuck, other]), Metrics(), []

    async def gone(namespace: str, name: str) -> None:
        return None

    deps = Deps(kube=SimpleNamespace(ledger=ledger, demos=SimpleNamespace(get=gone)),  # type: ignore[arg-type]
                settings=Settings(), faults=lambda spec, kube, docker: Undoer({"kind-worker"}, undone),  # type: ignore[arg-type]
                clock=lambda: DUE + 120, metrics=metrics)
    done = asyncio.run(reconcile(deps))
    assert undone == ["kind-worker3"] and len(done) == 1, "the stuck entry came first and failed"
    assert set(ledger.data) == {stuck.key}, "kept for the next round; the undone one dropped"
    assert metrics.registry.get_sample_value("chaosdemo_undo_failures_total", {"action": "node-kill"}) == 1

"""Issue 20, finding 9: the operator's own record of what it must undo (pure half)."""

from chaosdemo.core.undo import UndoEntry, orphaned

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

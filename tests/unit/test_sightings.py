"""Who saw the fault when, from the operator's own looks (pure)."""

from __future__ import annotations

from chaosdemo.api.models import TargetStatus
from chaosdemo.api.timestamps import iso
from chaosdemo.core.sightings import advance, close, ours, tidb_operator_shows
from chaosdemo.core.snapshot import Snapshot, TidbOperatorState

from .helpers import NOW, healthy, pod, store

T = TargetStatus(pod="basic-tikv-1", pod_uid="uid-basic-tikv-1", node="node-1", store_id="2", restart_count=0)
INJECTED = iso(NOW)
OK_TC = TidbOperatorState("True", "Ready", (("basic-tikv-0", "Up"), ("basic-tikv-1", "Up"), ("basic-tikv-2", "Up")))


def look(at: float, *, tikv1: object = None, store2: str = "Up", tc: TidbOperatorState | None = OK_TC,
         pd_error: str = "") -> Snapshot:
    pods = [pod("basic-tikv-0"), tikv1 if tikv1 is not None else pod("basic-tikv-1"), pod("basic-tikv-2")]
    stores = (store("1", "basic-tikv-0"), store("2", "basic-tikv-1", state=store2), store("3", "basic-tikv-2"))
    return healthy(taken_at=NOW + at, pods=tuple(pods), stores=stores, tidb_operator=tc, pd_error=pd_error)


def run(*looks: Snapshot) -> dict[str, object]:
    sights: list = []
    for s in looks:
        sights = advance(sights, s, T, INJECTED)
    return {o.observer: o for o in close(sights)}


def test_a_paused_store_kubernetes_never_sees_pd_then_tidb_operator_do_and_pd_reaches_down() -> None:
    bad_tc = TidbOperatorState("False", "TiKVStoreNotUp", (("basic-tikv-1", "Disconnected"),))
    seen = run(look(0.5), look(18, store2="Disconnected"), look(24, store2="Disconnected", tc=bad_tc),
               look(40, store2="Down", tc=bad_tc), look(50), look(70))
    assert seen["kubernetes"].saw_fault_at is None and seen["kubernetes"].what == "never showed the fault"
    pd = seen["pd"]
    assert (pd.saw_fault_seconds, pd.what, pd.saw_end_seconds) == (18, "store 2 Disconnected", 50)
    assert pd.down_at == iso(NOW + 40)
    assert (seen["tidb-operator"].saw_fault_seconds, seen["tidb-operator"].saw_end_seconds) == (24, 50)


def test_a_replaced_pod_is_seen_by_kubernetes_and_over_once_the_new_one_is_ready() -> None:
    seen = run(look(0.01, tikv1=pod("basic-tikv-1", deleting=True)),
               look(0.3, tikv1=pod("basic-tikv-1", uid="new", ready=False)),
               look(9, tikv1=pod("basic-tikv-1", uid="new")))
    k = seen["kubernetes"]
    assert (k.saw_fault_seconds, k.what, k.saw_end_seconds) == (0.01, "pod being deleted", 9)
    assert seen["pd"].what == "never showed the fault"


def test_a_look_where_an_observer_could_not_be_read_tells_nothing_about_it() -> None:
    seen = run(look(1, pd_error="connection refused", tc=None), look(2))
    assert seen["pd"].saw_fault_at is None and seen["tidb-operator"].saw_fault_at is None
    assert tidb_operator_shows(look(3, tc=None), T) is None
    assert tidb_operator_shows(look(3), T) == ""


def test_chaosdemos_own_entry_is_its_detection_and_recovery() -> None:
    mine = ours([], iso(NOW + 0.6), 0.6, "tikv-stores-answer", iso(NOW + 22), 22.0)[-1]
    assert (mine.observer, mine.saw_fault_seconds, mine.what, mine.saw_end_seconds) == (
        "chaosdemo", 0.6, "tikv-stores-answer broke", 22.0)


def test_an_observer_that_says_why_it_was_not_read_keeps_saying_it_at_the_end() -> None:
    sights = advance([], look(1, tc=None), T, INJECTED)
    sights = [o.model_copy(update={"what": "no tidb-operator status on the TidbCluster: not waited for"})
              if o.observer == "tidb-operator" else o for o in sights]
    seen = {o.observer: o for o in close(sights)}
    assert seen["tidb-operator"].what.startswith("no tidb-operator status")
    assert seen["kubernetes"].what == "never showed the fault"

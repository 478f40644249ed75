from chaosdemo.core.invariants import Breach
from chaosdemo.core.timeline import open_violations, update_timeline

B = Breach("pd-stores-up", "store-1", "store 1 is Disconnected")


def test_a_breach_opens_a_violation_and_clears_when_it_holds_again():
    t, _ = update_timeline([], [B], "t1")
    assert (t[0].first_seen, t[0].cleared) == ("t1", None)
    t, _ = update_timeline(t, [B], "t2")
    assert len(t) == 1 and t[0].first_seen == "t1"
    t, _ = update_timeline(t, [], "t3")
    assert t[0].cleared == "t3"


def test_a_breach_that_comes_back_opens_a_new_entry():
    t, _ = update_timeline([], [B], "t1")
    t, _ = update_timeline(t, [], "t2")
    t, _ = update_timeline(t, [B], "t3")
    assert [(v.first_seen, v.cleared) for v in t] == [("t1", "t2"), ("t3", None)]


def test_the_timeline_is_bounded_and_counts_what_it_dropped():
    t, dropped_total = [], 0
    for i in range(30):
        t, d = update_timeline(t, [B], f"a{i}")
        dropped_total += d
        t, d = update_timeline(t, [], f"b{i}")
        dropped_total += d
    t, d = update_timeline(t, [B], "last")
    dropped_total += d
    t2, d2 = update_timeline(t, [B], "again", limit=10)
    assert len(t2) == 10 and d2 == len(t) - 10
    assert t2[-1].cleared is None, "the open violation is never dropped first"
    assert dropped_total == 0


def test_watch_event_breaches_open_without_clearing_others():
    other = Breach("pd-regions-healthy", "pending-peer", "3 regions")
    t, _ = update_timeline([], [other], "t1")
    t = open_violations(t, [B, B], "t2")
    assert [(v.invariant, v.cleared) for v in t] == [("pd-regions-healthy", None), ("pd-stores-up", None)]

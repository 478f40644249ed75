"""The SQL canary's arithmetic (core/canary.py): a tally of finished statements read into what TiDB's
clients felt, and held against a budget. Each test feeds statements as a runner at 20 a second would."""

import pytest

from chaosdemo.core.canary import (
    LATENCY_BOUNDS,
    TIMEOUT,
    Budget,
    Tally,
    baseline_refusal,
    breaches,
    impact,
    percentile,
)

RATE = 20
BUDGET = Budget(max_unavailable_seconds=20, min_throughput_share=0.5, max_statement_seconds=2,
                serve_again_seconds=120)


def steady(t: Tally, start: float, end: float, *, latency: float = 0.004, parts: int = 3,
           down: set[int] = frozenset(), code: str = TIMEOUT, wait: float = 5.0) -> None:
    """Statements every 1/RATE s from ``start`` to ``end`` on parts in turn; a part in ``down`` fails
    (after ``wait`` seconds for a timeout, at once for any other code)."""
    n = 0
    while start + n / RATE < end:
        at, part = start + n / RATE, n % parts
        if part in down:
            t.add(at + (wait if code == TIMEOUT else 0.01), False, wait if code == TIMEOUT else 0.01, code, part)
        else:
            t.add(at + latency, True, latency, None, part)
        n += 1


def test_percentiles_come_from_buckets_at_most_a_quarter_above_the_truth() -> None:
    t = Tally()
    for i in range(100):
        t.add(0.5, True, 0.010 if i < 98 else 1.5)
    hist = t.seconds[0].hist
    p50, p99 = percentile(hist, 0.5), percentile(hist, 0.99)
    assert p50 is not None and 0.010 <= p50 <= 0.0125
    assert p99 is not None and 1.5 <= p99 <= 1.5 * 1.25
    assert percentile([0] * (len(LATENCY_BOUNDS) + 1), 0.99) is None


def test_a_quiet_fault_leaves_no_trace_and_no_breach() -> None:
    t = Tally()
    steady(t, 0, 40)
    i = impact(t, baseline=(0, 10), injected=10, now=40, budget=BUDGET, window=5)
    assert i.baseline_throughput == RATE and i.failures == {} and i.longest_unavailable == 0.0
    assert i.unserved_from is None and i.served_again is None and i.first_failure is None
    assert i.lowest_share is not None and i.lowest_share >= 0.95
    assert breaches(i, BUDGET, injected=10, settled=True) == []


def test_a_store_leading_a_third_of_the_rows_costs_those_rows_only() -> None:
    """A paused leader: its rows time out until the election (10 s), the others are served throughout."""
    t = Tally()
    steady(t, 0, 10)
    steady(t, 10, 20, down={1})
    steady(t, 20, 45)
    i = impact(t, baseline=(0, 10), injected=10, now=45, budget=BUDGET, window=5, led=[1])
    assert i.failures == {TIMEOUT: pytest.approx(67, abs=1)}
    assert i.affected[1] == i.failures[TIMEOUT] and i.others[1] == 0 and i.others[0] > 0
    assert i.longest_unavailable == 0.0, "the other rows kept succeeding"
    assert i.first_failure == pytest.approx(15.05) and i.last_failure == pytest.approx(24.95), \
        "timeouts finish 5 s after they were sent"
    assert i.lowest_share == pytest.approx(2 / 3, abs=0.05)
    assert i.unserved_from is None, "two thirds of the rate is within a 50% budget, and the p99 counts successes"
    assert i.slowest_statement == 5.0 and (i.slowest_affected, i.slowest_others) == (5.0, 0.004)
    assert breaches(i, BUDGET, injected=10, settled=True) == [], \
        "the led rows wait for an election whatever the fault: the statement bound holds the others"


def test_a_slow_statement_on_rows_the_broken_store_did_not_lead_breaks_the_bound() -> None:
    """The rest of the keyspace must stay fast: one statement of 2.5 s on a row led elsewhere breaks 2 s."""
    t = Tally()
    steady(t, 0, 10)
    steady(t, 10, 40, down={1})
    t.add(20.5, True, 2.5, None, 0)
    i = impact(t, baseline=(0, 10), injected=10, now=40, budget=BUDGET, window=5, led=[1])
    assert (i.slowest_affected, i.slowest_others) == (5.0, 2.5)
    assert breaches(i, BUDGET, injected=10, settled=True) == [
        "a statement on rows the broken store did not lead took 2.5 s (budget 2 s)"]
    assert i.slowest_others_part == 0, "the part that statement was on"
    assert breaches(i, BUDGET, injected=10, settled=True, where=lambda p: f"rows {p * 21}-{p * 21 + 20}") == [
        "a statement on rows the broken store did not lead (rows 0-20) took 2.5 s (budget 2 s)"]
    unknown = impact(t, baseline=(0, 10), injected=10, now=40, budget=BUDGET, window=5)
    assert unknown.slowest_others == 5.0, "with no layout known, every row is held to the bound"
    assert Budget(20, 0.5, None, 120) and breaches(i, Budget(20, 0.5, None, 120), injected=10, settled=True) == []


def test_an_outage_is_the_longest_stretch_without_a_success_resolved_to_a_tenth() -> None:
    t = Tally()
    steady(t, 0, 10)
    steady(t, 10, 22.3, down={0, 1, 2}, code="9005")  # Region is unavailable, at once
    steady(t, 22.3, 50)
    i = impact(t, baseline=(0, 10), injected=10, now=50, budget=BUDGET, window=5)
    assert i.longest_unavailable == pytest.approx(12.3, abs=0.1)
    assert i.unavailable_from is not None and 9.9 <= i.unavailable_from <= 10.0
    assert i.failures == {"9005": pytest.approx(246, abs=1)}
    assert i.lowest_share == 0.0 and i.unserved_from == 11, "read over 3 s: a second late (firstFailure is exact)"
    assert i.served_again == 23, "the first second whose last 3 s averaged half the rate, held for the window"
    assert breaches(i, BUDGET, injected=10, settled=True) == ["throughput fell to 0% of baseline (budget 50%)"]
    tight = Budget(10, 0.5, 2, 5)
    said = breaches(i, tight, injected=10, settled=True)
    assert f"no statement succeeded for {i.longest_unavailable:.1f} s (budget 10 s)" in said
    assert "users were served again 13 s after the injection (budget 5 s)" in said


def test_an_outage_still_open_counts_up_to_now_and_users_not_served_again_breach_only_once_settled() -> None:
    t = Tally()
    steady(t, 0, 10)
    i = impact(t, baseline=(0, 10), injected=10, now=31.5, budget=BUDGET, window=5)
    assert i.longest_unavailable == pytest.approx(21.5, abs=0.1)
    assert i.served_again is None and i.unserved_from == 11
    assert "no statement succeeded for 21.5 s (budget 20 s)" in breaches(i, BUDGET, injected=10, settled=False)
    assert "users were not served again" not in " ".join(breaches(i, BUDGET, injected=10, settled=False))
    assert "users were not served again" in " ".join(breaches(i, BUDGET, injected=10, settled=True))


def test_a_served_again_needs_the_whole_window() -> None:
    t = Tally()
    steady(t, 0, 10)
    steady(t, 10, 15, down={0, 1, 2}, code="9002")
    steady(t, 15, 18)  # three good seconds, then a relapse
    steady(t, 18, 20, down={0, 1, 2}, code="9002")
    steady(t, 20, 40)
    i = impact(t, baseline=(0, 10), injected=10, now=40, budget=BUDGET, window=5)
    assert i.served_again == 21, "a relapse starts the window again (throughput read over 3 s)"


def test_the_bank_total_is_held_only_when_every_read_of_it_was_right() -> None:
    t = Tally()
    steady(t, 0, 20)
    i = impact(t, baseline=(0, 10), injected=10, now=20, budget=BUDGET, window=5)
    assert i.bank_total_held is None, "never read: nothing is claimed"
    t.total(12, 6400, 6400)
    assert impact(t, baseline=(0, 10), injected=10, now=20, budget=BUDGET, window=5).bank_total_held is True
    t.total(15, 6399, 6400)
    assert impact(t, baseline=(0, 10), injected=10, now=20, budget=BUDGET, window=5).bank_total_held is False


def test_memory_is_bounded_by_seconds_not_statements() -> None:
    t = Tally()
    for i in range(20_000):
        t.add(i / 1000, i % 7 != 0, 0.003, f"code{i % 50}" if i % 7 == 0 else None, i % 4)
    assert len(t.seconds) == 20
    assert all(len(s.failed) <= 17 for s in t.seconds.values()), "codes past 16 count as other"
    assert all(len(s.parts) == 4 for s in t.seconds.values())
    assert len(t.gaps) <= 64


def test_a_cluster_that_does_not_meet_its_own_baseline_is_refused() -> None:
    ok = Tally()
    steady(ok, 0, 10)
    assert baseline_refusal(ok, 0, 10, RATE, BUDGET) is None
    failing = Tally()
    steady(failing, 0, 10, down={2}, code="1105")
    said = baseline_refusal(failing, 0, 10, RATE, BUDGET) or ""
    assert "statements failed before any fault was injected (1105 x" in said
    slow = Tally()
    steady(slow, 0, 10, latency=2.5)
    assert "a statement took 2.5 s before any fault" in (baseline_refusal(slow, 0, 10, RATE, BUDGET) or "")
    assert baseline_refusal(slow, 0, 10, RATE, Budget(20, 0.5, None, 120)) is None
    thin = Tally()
    for s in range(10):
        thin.add(s + 0.5, True, 0.004)
    assert "served 1 statements a second" in (baseline_refusal(thin, 0, 10, RATE, BUDGET) or "")
    assert "no full second" in (baseline_refusal(Tally(), 0, 0.5, RATE, BUDGET) or "")
    wrong = Tally()
    steady(wrong, 0, 10)
    wrong.total(5, 1, 6400)
    assert "the bank's total was 1" in (baseline_refusal(wrong, 0, 10, RATE, BUDGET) or "")


def test_a_baseline_shorter_than_the_share_window_reads_no_drop() -> None:
    """Seen on kind: with 3 s of baseline, a 10 s mean that reached back before the canary's first second read
    70% of baseline one second after the injection, before any statement had felt the fault."""
    t = Tally()
    steady(t, 0, 8)
    i = impact(t, baseline=(0, 4), injected=4, now=8, budget=BUDGET, window=2)
    assert i.lowest_share is not None and i.lowest_share >= 0.95, i.lowest_share

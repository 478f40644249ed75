"""A PD that restarts, or a new PD leader, reloads store metadata saved up to 5 minutes earlier: every store
reads stale at once until its next heartbeat. That is PD's view, not a sick cluster: the preflight looks
again for up to two heartbeat bounds before it refuses, and a refusal says which it was."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from chaosdemo.api.errors import PreflightFailed
from chaosdemo.core.invariants import InvariantConfig, pd_view_reloading
from chaosdemo.core.snapshot import Snapshot
from chaosdemo.run.preflight import check_snapshot, look_past_reload

from .helpers import healthy, pod, store

CFG = InvariantConfig(heartbeat_stale_seconds=11)
NAMES = ["basic-tikv-0", "basic-tikv-1", "basic-tikv-2"]


def reloaded(ages: tuple[float, ...] = (290, 250, 297), **overrides: object) -> Snapshot:
    """What PD shows right after it reloaded: heartbeats from its last save, every store Disconnected."""
    stores = tuple(store(str(i + 1), n, state="Disconnected", age=a)
                   for i, (n, a) in enumerate(zip(NAMES, ages, strict=True)))
    return healthy(stores=stores, **overrides)


def test_every_store_stale_at_once_with_every_pod_ready_is_pds_view() -> None:
    why = pd_view_reloading(reloaded(), CFG)
    assert "stale at once (250-297s ago)" in why and "PD's view" in why


@pytest.mark.parametrize(("snap", "what"), [
    (healthy(), "a healthy view"),
    (reloaded((290, 5, 297)), "one store heard since: the others are the stores' own"),
    (reloaded(pods=(pod(NAMES[0], ready=False), *(pod(n) for n in NAMES[1:]))), "a pod not Ready"),
    (reloaded(pods=(pod(NAMES[0], deleting=True), *(pod(n) for n in NAMES[1:]))), "a pod going away"),
    (reloaded(pods=(pod(NAMES[0]), pod(NAMES[2]))), "a store whose pod is gone"),
    (reloaded(store_answers=((NAMES[1], "no answer within 0.5s"),)), "a store that does not answer"),
    (replace(reloaded(), stores=reloaded().stores[:1]), "one store: nothing to tell it from"),
    (reloaded(pd_unread=(("stores", "timeout"),)), "stores unread"),
])
def test_anything_a_fault_could_explain_is_not_taken_for_a_reload(snap: Snapshot, what: str) -> None:
    assert pd_view_reloading(snap, CFG) == "", what


class Looks:
    """Snapshots in turn, on a clock that only the sleeps move."""

    def __init__(self, *snaps: Snapshot) -> None:
        self.snaps, self.now, self.slept = list(snaps), 0.0, 0.0

    async def look(self) -> Snapshot:
        self.last = self.snaps.pop(0) if self.snaps else self.last
        return self.last

    async def sleep(self, s: float) -> None:
        self.now += s
        self.slept += s

    def run(self) -> Snapshot:
        first = self.last = self.snaps.pop(0)
        return asyncio.run(look_past_reload(self.look, first, CFG, sleep=self.sleep, clock=lambda: self.now))


def test_the_preflight_looks_again_until_pd_has_heard_every_store() -> None:
    looks = Looks(reloaded(), reloaded(), reloaded(), healthy())
    snap = looks.run()
    check_snapshot(snap, CFG)  # not refused
    assert looks.slept == 3.0, "one second between looks, and no more once PD heard them"


def test_a_view_that_stays_stale_is_refused_after_two_heartbeat_bounds_saying_why() -> None:
    looks = Looks(reloaded())
    snap = looks.run()
    assert looks.slept == pytest.approx(22.0), "two heartbeat bounds, then the refusal"
    with pytest.raises(PreflightFailed) as e:
        check_snapshot(snap, CFG)
    assert e.value.reason == "ClusterUnhealthy"
    assert "PD's view, not the stores" in e.value.message and "after waiting 22s" in e.value.message


def test_a_cluster_that_is_sick_is_refused_without_waiting() -> None:
    sick = reloaded((290, 5, 297))
    looks = Looks(sick)
    assert looks.run() is sick and looks.slept == 0
    with pytest.raises(PreflightFailed, match="already unhealthy"):
        check_snapshot(sick, CFG)


def test_a_pd_reload_while_detecting_is_not_the_detection_and_holds_recovery_once_detected() -> None:
    from chaosdemo.api.models import TargetStatus
    from chaosdemo.core.step import Detected, KeepWaiting, WatchPlan, WatchState, step

    target = TargetStatus(pod=NAMES[1], pod_uid=f"uid-{NAMES[1]}", node="node-1", restart_count=0, store_id="2")
    plan = WatchPlan(injected_at=reloaded().taken_at - 5, detection_seconds=120, recovery_seconds=600,
                     stability_seconds=10, target=target, cfg=CFG)
    quiet = step(WatchState(), plan, [], reloaded())
    assert isinstance(quiet.decision, KeepWaiting), "PD's reload is not the fault"
    assert quiet.state.violations == ()

    gone = reloaded(pods=(pod(NAMES[0]), pod(NAMES[2])))  # the fault shows: the target's pod is gone
    seen = step(quiet.state, plan, [], gone)
    assert isinstance(seen.decision, Detected)
    assert {b.invariant for b in seen.decision.breaches} >= {"tikv-pods-ready", "pd-store-heartbeats-fresh"}
    later = step(seen.state, plan, [], reloaded())
    assert isinstance(later.decision, KeepWaiting) and later.state.stable_since is None, \
        "once detected, PD's stale view holds recovery until PD has heard every store"


def leaderless() -> Snapshot:
    return healthy(stores=(), pd_members=(), region_checks={}, pd_leaderless=True,
                   pd_error="PD at http://basic-pd:2379 answered /pd/api/v1/stores with HTTP 503 Service Unavailable: "
                            "the member asked knows no PD leader (PD is electing one)")


def test_the_preflight_waits_out_a_pd_leader_election_and_the_reload_one_store_at_a_time() -> None:
    """Issue 32: the new leader hears one store before the preflight's next look, so not every store is stale at
    once; the election is what tells the preflight that the stale others are PD's reload."""
    looks = Looks(leaderless(), leaderless(), reloaded((290, 0.5, 297)), reloaded((290, 0.5, 0.5)), healthy())
    snap = looks.run()
    check_snapshot(snap, CFG)  # not refused
    assert looks.slept == 4.0


def test_a_pd_that_stays_leaderless_is_refused_after_the_grace_as_unreachable() -> None:
    looks = Looks(leaderless())
    snap = looks.run()
    assert looks.slept == pytest.approx(22.0 + 15.0)
    with pytest.raises(PreflightFailed, match="knows no PD leader") as e:
        check_snapshot(snap, CFG)
    assert e.value.reason == "PDUnreachable"


def test_the_preflight_waits_for_a_restarting_pd_member_and_refuses_one_down_past_its_grace() -> None:
    down = healthy(pd_members=(("basic-pd-0", True), ("basic-pd-1", False), ("basic-pd-2", True)))
    three = healthy(pd_members=(("basic-pd-0", True), ("basic-pd-1", True), ("basic-pd-2", True)))
    looks = Looks(down, down, down, three)
    check_snapshot(looks.run(), CFG)
    assert looks.slept == 3.0
    stuck = Looks(down)
    with pytest.raises(PreflightFailed, match="PD member basic-pd-1 is unhealthy"):
        check_snapshot(stuck.run(), CFG)
    assert stuck.slept == pytest.approx(60.0)

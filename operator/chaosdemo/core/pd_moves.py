"""PD's own moves told apart from a fault's (pure): a PD leader election, and the reload that follows it.

When PD's leader goes (its pod deleted or restarted, its node lost), real PD has no leader for seconds: the
leader's lease (``leader-lease``, 3 s) runs out or is revoked, the etcd members elect (``election-interval``
3 s, randomized up to twice that), and only etcd's leader campaigns (tikv/pd ``server/server.go``). TiKV's
issue 12794 measured about 4 s, with requests held up to 8 s. Meanwhile a follower answers 503 "no leader",
or 500 when the leader it still names does not answer (``pkg/utils/apiutil/serverapi/middleware.go``). The
new leader then reloads store metadata saved up to 5 minutes earlier (``pkg/core/store.go``
``storePersistInterval``), so each store reads stale, and Disconnected, until its next heartbeat (10 s).

A PD member that restarts (its pod deleted, as a rolling restart does) is unhealthy in ``/health`` until it
is back and has rejoined, while the others keep PD's quorum and leader.

None of these is what a demo injected, so before a detection (and through a no-fault control):

- a leaderless PD is no verdict for up to ``pd_election_grace_seconds``, and ``pd-reachable`` past that; so
  is a partial view (some reads answered, others not: tidb-operator gives PD no readiness probe by default, so
  PD's Service sends connections to a restarted PD pod before it listens);
- a minority of PD members unhealthy, while the healthy ones keep PD's quorum, is no verdict for up to
  ``pd_member_restart_grace_seconds``, and ``pd-members-healthy`` past that;
- once PD answers again, while it answers in part or a member is down (the pod going may have been the
  leader's), when PD names another leader than at the last look (elected between two looks), and whenever
  every store reads stale at once while their pods are Ready (``pd_view_reloading``),
  a stale or Disconnected store is PD's reload for two heartbeat bounds, as long as its pod is Ready and its
  TiKV answers when asked. A store whose pod is not Ready, or whose TiKV does not answer, is never excused:
  that is the fault's.

After a detection nothing is excused: recovery needs PD's whole view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chaosdemo.core.addresses import pod_name_of_store
from chaosdemo.core.invariants import Breach, InvariantConfig, pd_view_reloading
from chaosdemo.core.snapshot import Snapshot

__all__ = ["RELOAD_SHOWS", "PDMoves", "excuse", "minority_down", "reload_span"]

RELOAD_SHOWS = frozenset({"pd-store-heartbeats-fresh", "pd-stores-up"})  # what a PD reload breaks on a store


@dataclass(frozen=True)
class PDMoves:
    """What the watch remembers of PD's moves between looks."""

    electing_since: float | None = None  # the first look of a run where PD knew no leader or answered in part
    members_down_since: float | None = None  # the first look of a run where a minority of members was unhealthy
    reload_until: float | None = None  # until then, a stale store on a Ready, answering pod is PD's reload
    leader: str = ""  # the member PD last named its leader (/members)


def reload_span(cfg: InvariantConfig) -> float:
    """How long after PD answers again its reload may show: every store heartbeats once within a bound; two,
    for a busy machine."""
    return 2 * cfg.heartbeat_stale_seconds


def _reloaded(snap: Snapshot, subject: str) -> bool:
    """Whether the store a breach names may be only PD's reload: its pod is Ready and its TiKV answered."""
    store = next((st for st in snap.stores if f"store-{st.id}" == subject), None)
    pod_name = pod_name_of_store(store.address, snap.cluster, snap.namespace) if store else None
    pod = snap.pod(pod_name or "")
    if pod is None or not pod.ready or pod.deleting:
        return False
    answers = dict(snap.store_answers)
    return answers.get(pod.name, "") == "" if answers else True


def minority_down(snap: Snapshot) -> bool:
    """Whether some PD members are unhealthy and the healthy ones still keep PD's quorum."""
    healthy = sum(1 for _, ok in snap.pd_members if ok)
    return 0 < len(snap.pd_members) - healthy and healthy >= len(snap.pd_members) // 2 + 1


def _members(moves: PDMoves, snap: Snapshot, cfg: InvariantConfig, breaches: list[Breach]) -> tuple[PDMoves,
                                                                                                   list[Breach]]:
    if not snap.pd_answered("health") or not minority_down(snap):
        return replace(moves, members_down_since=None), breaches
    since = moves.members_down_since if moves.members_down_since is not None else snap.taken_at
    # The member that went may have been the leader, replaced between two looks without a "no leader" seen:
    # its successor's reload is excused as after an election.
    until = max(moves.reload_until or 0.0, snap.taken_at + reload_span(cfg))
    moves = replace(moves, members_down_since=since, reload_until=until)
    if snap.taken_at - since < cfg.pd_member_restart_grace_seconds:
        breaches = [b for b in breaches if b.invariant != "pd-members-healthy"]
    return moves, breaches


def excuse(moves: PDMoves, snap: Snapshot, cfg: InvariantConfig, breaches: list[Breach]) -> tuple[PDMoves,
                                                                                                  list[Breach]]:
    """The breaches a detection may count at this look, and what to remember (see the module)."""
    now = snap.taken_at
    moves, breaches = _members(moves, snap, cfg, breaches)
    if snap.pd_leaderless or (snap.pd_unread and not snap.pd_error):
        since = moves.electing_since if moves.electing_since is not None else now
        moves = replace(moves, electing_since=since)
        if now - since < cfg.pd_election_grace_seconds:
            breaches = [b for b in breaches if b.invariant != "pd-reachable"]
        if snap.pd_leaderless:
            return moves, breaches
        # In part: a PD pod going or coming back, maybe the leader: what the stores read may be a reload.
        moves = replace(moves, reload_until=max(moves.reload_until or 0.0, now + reload_span(cfg)))
    elif moves.electing_since is not None:  # a leader again: it reloads what the last one saved
        moves = replace(moves, electing_since=None, reload_until=now + reload_span(cfg))
    if snap.pd_leader:  # a new leader since the last look, elected between two looks: it reloads too
        if moves.leader and snap.pd_leader != moves.leader:
            moves = replace(moves, reload_until=max(moves.reload_until or now, now + reload_span(cfg)))
        moves = replace(moves, leader=snap.pd_leader)
    if pd_view_reloading(snap, cfg):
        moves = replace(moves, reload_until=max(moves.reload_until or now, now + reload_span(cfg)))
    if moves.reload_until is None:
        return moves, breaches
    if now > moves.reload_until:
        return replace(moves, reload_until=None), breaches
    return moves, [b for b in breaches if not (b.invariant in RELOAD_SHOWS and _reloaded(snap, b.subject))]

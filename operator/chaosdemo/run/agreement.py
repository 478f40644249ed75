"""After recovery is proven, until tidb-operator's status agrees: a demo ends when what users look at agrees.

Recovery is proven and timed from PD and Kubernetes (follow.py). tidb-operator copies PD's store states on
its own sync period, so ``kubectl get tidbcluster`` may still say not Ready for a while (seen on the kind
tier: about a minute after a node-kill). This waits, within the recovery deadline, until its status shows
the cluster Ready with the target's store Up, and the sightings record when. A TidbCluster without
tidb-operator's status is said so in the sightings, and not waited for; one that still disagrees at the
deadline fails the demo, saying what it shows.
"""

from __future__ import annotations

import asyncio

from chaosdemo.api.errors import DemoFailed
from chaosdemo.api.timestamps import parse_iso
from chaosdemo.core.sightings import advance, tidb_operator_shows
from chaosdemo.run.demo import Demo
from chaosdemo.run.deps import Deps
from chaosdemo.run.follow import plan_injected, with_ours
from chaosdemo.run.observer import Observer

__all__ = ["until_tidb_operator_agrees"]


async def until_tidb_operator_agrees(deps: Deps, demo: Demo, observer: Observer) -> None:
    st, rec, target = demo.status, demo.rec, demo.target
    deadline = parse_iso(plan_injected(st)) + demo.spec.timeouts.recovery_seconds
    said, unread = "", 0
    while True:
        snap = await observer.snapshot()
        st.observers = with_ours(st, advance(st.observers, snap, target, plan_injected(st)))
        what = tidb_operator_shows(snap, target)
        unread = unread + 1 if what is None else 0
        if what is None and unread < 3:  # one unanswered read is not "no status": look again
            await asyncio.sleep(deps.settings.poll_seconds)
            continue
        if what is None:
            st.observers = [o if o.observer != "tidb-operator" or o.saw_fault_at else
                            o.model_copy(update={"what": "no tidb-operator status on the TidbCluster: not waited for"})
                            for o in st.observers]
            return
        if what == "":
            if said:
                await rec.event("Normal", "TidbOperatorAgrees", "tidb-operator's status shows the cluster Ready "
                                f"again, {snap.taken_at - parse_iso(plan_injected(st)):.1f}s after the injection")
            return
        if deps.clock() > deadline:
            raise DemoFailed(f"recovered, but tidb-operator's status still shows {what} at the recovery deadline",
                             reason="TidbOperatorDisagrees")
        if what != said:
            said = what
            st.message = f"recovered; waiting for tidb-operator's status to agree (it shows {what})"
            await rec.save()
        await asyncio.sleep(deps.settings.poll_seconds)

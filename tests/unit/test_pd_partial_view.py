"""Issue 32: the PD view survives one slow read (real PD's /health asks every member in turn, 3 s each, so
one dead member of three holds it up), against a real HTTP server on loopback.

Seen to fail before: the six reads were gathered as one, and a /health past the timeout lost the whole look:
the stores PD had answered were thrown away and the preflight said "PD is not reachable".
"""

import asyncio

import pytest
from aiohttp import web

from chaosdemo.api.errors import PreflightFailed
from chaosdemo.api.models import TargetStatus
from chaosdemo.clients.pd import PDClient
from chaosdemo.core.invariants import InvariantConfig, evaluate
from chaosdemo.core.sightings import SAYS
from chaosdemo.core.snapshot import REGION_CHECKS, Snapshot, pd_leader_from, pd_members_from, stores_from_pd
from chaosdemo.run.observer import Observer
from chaosdemo.run.preflight import check_snapshot

from .helpers import NOW, healthy

STALE = {"store": {"id": 2, "address": "basic-tikv-1.basic-tikv-peer.tidb-cluster.svc:20160",
                   "state_name": "Disconnected", "last_heartbeat": int((NOW - 25) * 1e9)},
         "status": {"leader_count": 3, "region_count": 9}}


async def serve(slow: set[str]) -> tuple[web.AppRunner, str]:
    async def stores(_: web.Request) -> web.Response:
        return await answer("stores", {"count": 1, "stores": [STALE]})

    async def health(_: web.Request) -> web.Response:
        return await answer("health", [{"name": "basic-pd-0", "health": True}])

    async def members(_: web.Request) -> web.Response:
        leader = {"name": "basic-pd-0", "member_id": 1}
        return await answer("members", {"members": [leader], "leader": leader})

    async def check(req: web.Request) -> web.Response:
        return await answer(f"regions/check/{req.match_info['c']}", {"count": 0, "regions": []})

    async def answer(read: str, body: object) -> web.Response:
        if read in slow:
            await asyncio.sleep(0.8)  # past the client's 0.3 s
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/pd/api/v1/stores", stores)
    app.router.add_get("/pd/api/v1/health", health)
    app.router.add_get("/pd/api/v1/members", members)
    app.router.add_get("/pd/api/v1/regions/check/{c}", check)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


async def look(slow: set[str]) -> Snapshot:
    runner, url = await serve(slow)
    pd = PDClient(url, timeout=0.3)
    try:
        observer = Observer(None, pd, "basic", "tidb-cluster")  # type: ignore[arg-type]  # PD alone is read
        view = await observer._pd()
        assert not view.leaderless, "a slow member is not an election"
    finally:
        await pd.aclose()
        await runner.cleanup()
    return healthy(stores=stores_from_pd(view.stores, "basic", "tidb-cluster") if view.stores else (),
                   pd_members=pd_members_from(view.health), region_checks=view.checks, pd_error=view.error,
                   pd_unread=view.unread, pd_leader=pd_leader_from(view.members))


async def test_a_slow_health_costs_that_read_only_and_says_so():
    s = await look({"health"})
    assert [r for r, _ in s.pd_unread] == ["health"] and not s.pd_error
    assert "did not answer /pd/api/v1/health" in s.pd_unread[0][1]
    assert [st.id for st in s.stores] == ["2"] and set(s.region_checks) == set(REGION_CHECKS)
    assert s.pd_leader == "basic-pd-0", "PD's leader is read on its own too"
    breaches = {(b.invariant, b.subject): b.message for b in evaluate(s, InvariantConfig())}
    assert "a slow or dead PD member holds it up" in breaches["pd-reachable", "pd/health"]
    assert ("pd-stores-up", "store-2") in breaches and ("pd-store-heartbeats-fresh", "store-2") in breaches
    assert not any(inv == "pd-members-healthy" for inv, _ in breaches), "no member is judged from no answer"
    assert not s.pd_answered("health") and s.pd_answered("stores")
    with pytest.raises(PreflightFailed, match="PD answered only part of the look") as e:
        check_snapshot(s, InvariantConfig())
    assert e.value.reason == "PDUnreachable"


async def test_unread_stores_are_no_verdict_on_them_and_a_pd_that_answers_nothing_is_unreachable():
    s = await look({"stores"})
    assert [r for r, _ in s.pd_unread] == ["stores"] and s.pd_members == (("basic-pd-0", True),)
    names = {b.invariant for b in evaluate(s, InvariantConfig())}
    assert "pd-stores-up" not in names and "pd-store-heartbeats-fresh" not in names
    assert SAYS["pd"][0](s, TargetStatus(pod="basic-tikv-1", store_id="2")) is None, "no verdict, not 'missing'"
    every = await look({"stores", "health", "members", *(f"regions/check/{c}" for c in REGION_CHECKS)})
    assert every.pd_error.startswith("PD at") and every.pd_unread == ()
    assert [b.subject for b in evaluate(every, InvariantConfig()) if b.invariant == "pd-reachable"] == ["pd"]

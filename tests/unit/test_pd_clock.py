"""PD stamps each heartbeat on its own clock: a skew between PD's node and the operator's would add to every
heartbeat's age one for one, and a PD 30 s behind would have every store stale. PD's Date header says how far
apart the clocks are; ages are judged on PD's clock when that is more than the header's grain."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from email.utils import formatdate

import pytest
from aiohttp import web

from chaosdemo.clients.pd import PDClient
from chaosdemo.core.invariants import InvariantConfig, evaluate, pd_view_reloading
from chaosdemo.core.snapshot import pd_clock_ahead

from .helpers import NOW, healthy

CFG = InvariantConfig(heartbeat_stale_seconds=11)


@pytest.mark.parametrize(("ahead", "taken"), [
    (None, 0.0), (0.4, 0.0), (-1.9, 0.0),  # within the header's one-second grain: no skew told apart
    (-30.6, -30.6), (42.0, 42.0),
    (-200_000.0, 0.0),  # a day and more: the header is wrong, not the clock
])
def test_only_a_skew_the_date_header_can_tell_is_taken(ahead: float | None, taken: float) -> None:
    assert pd_clock_ahead(ahead) == taken


def behind(seconds: float) -> object:
    """The cluster as a PD whose clock is ``seconds`` behind the operator's shows it: every heartbeat fresh on
    PD's clock, stamped ``seconds`` earlier on ours."""
    s = healthy()
    return replace(s, stores=tuple(replace(st, last_heartbeat_ns=st.last_heartbeat_ns - int(seconds * 1e9))
                                   for st in s.stores))


def test_a_pd_clock_behind_ours_is_no_stale_store_once_its_skew_is_known() -> None:
    skewed = behind(30)
    unknown = evaluate(skewed, CFG)  # type: ignore[arg-type]
    assert {b.invariant for b in unknown} == {"pd-store-heartbeats-fresh"} and len(unknown) == 3
    assert pd_view_reloading(skewed, CFG)  # type: ignore[arg-type]
    known = replace(skewed, pd_clock_ahead=-30.0)  # type: ignore[type-var]
    assert evaluate(known, CFG) == [] and not pd_view_reloading(known, CFG)
    stale = replace(known, stores=(replace(known.stores[0], last_heartbeat_ns=int((NOW - 30 - 25) * 1e9)),
                                   *known.stores[1:]))
    [breach] = evaluate(stale, CFG)
    assert breach.subject == "store-1" and "25.0s ago (on PD's clock, 30s behind the operator's)" in breach.message


def test_the_pd_client_reads_how_far_pds_clock_is_from_ours_off_its_date_header() -> None:
    async def go(shift: float) -> float | None:
        async def stores(_: web.Request) -> web.Response:
            import time
            return web.json_response({"count": 0, "stores": []},
                                     headers={"Date": formatdate(time.time() + shift, usegmt=True)})
        app = web.Application()
        app.router.add_get("/pd/api/v1/stores", stores)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        pd = PDClient(f"http://127.0.0.1:{port}")
        try:
            await pd.stores()
            return pd.stores_date_ahead
        finally:
            await pd.aclose()
            await runner.cleanup()

    for shift in (-30.0, 0.0, 45.0):
        ahead = asyncio.run(go(shift))
        assert ahead is not None and shift - 1.5 <= ahead <= shift + 0.5, (shift, ahead)

"""Issue 21: each store asked on its own status port, against real sockets on loopback (no processes).

A stopped TiKV keeps its listening socket, so the kernel accepts the connection and nothing answers: a
listening socket nobody reads from is exactly that.
"""

import socket

from aiohttp import web

from chaosdemo.clients.tikv import StoreProbe
from chaosdemo.core.invariants import InvariantConfig, tikv_stores_answer
from chaosdemo.core.snapshot import Snapshot


async def serve(status: int) -> tuple[web.AppRunner, int]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, text="x" * 10)
    app = web.Application()
    app.router.add_get("/status", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def test_a_store_that_answers_a_stopped_one_and_a_failing_one_are_told_apart():
    ok, ok_port = await serve(200)
    bad, bad_port = await serve(500)
    stopped = socket.socket()
    stopped.bind(("127.0.0.1", 0))
    stopped.listen(8)  # accepts connections into the backlog, never reads: a SIGSTOPped process
    stopped_port = stopped.getsockname()[1]
    try:
        answers = {}
        for name, port in (("ok", ok_port), ("bad", bad_port), ("stopped", stopped_port)):
            probe = StoreProbe(port=port, timeout=0.3)
            answers[name] = await probe.ask("127.0.0.1")
            await probe.aclose()
    finally:
        stopped.close()
        await ok.cleanup()
        await bad.cleanup()
    assert answers["ok"] == ""
    assert answers["bad"] == f"127.0.0.1:{bad_port}/status answered HTTP 500 Internal Server Error"
    assert answers["stopped"] == f"no answer from 127.0.0.1:{stopped_port}/status within 0.3s"


def test_the_invariant_breaks_on_each_store_that_does_not_answer_and_holds_when_none_were_asked():
    snap = Snapshot(taken_at=0, cluster="basic", namespace="tidb-cluster",
                    store_answers=(("basic-tikv-0", ""), ("basic-tikv-1", "no answer within 0.5s")))
    breaches = tikv_stores_answer(snap, InvariantConfig())
    assert [(b.invariant, b.subject) for b in breaches] == [("tikv-stores-answer", "basic-tikv-1")]
    assert tikv_stores_answer(Snapshot(taken_at=0, cluster="basic", namespace="tidb-cluster"),
                              InvariantConfig()) == []

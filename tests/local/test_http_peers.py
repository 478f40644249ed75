"""The PD client against the SIMULATED PD, and the Claude client against the local
Anthropic-compatible endpoint: real HTTP on loopback, through the real SDK."""

import anthropic
import pytest
from aiohttp import web

from chaosdemo.api.errors import ClaudeUnavailable, PDUnavailable
from chaosdemo.api.models import DiagnosisAnswer
from chaosdemo.clients.claude import ClaudeDiagnoser
from chaosdemo.clients.pd import PDClient
from chaosdemo_local.cluster.control_plane import free_port
from chaosdemo_local.simulation import fake_claude
from chaosdemo_local.simulation.pd_sim import PDSim, Timing, build_app

from ..unit.test_pd_sim import PODS, T0

ANSWER = DiagnosisAnswer(summary="TiKV pod basic-tikv-1 was deleted.", root_cause="deleted", fault_class="pod-failure",
                         affected_pod="basic-tikv-1", affected_store="2", affected_node="w1", confidence=0.8,
                         evidence=["uid changed"], cited_evidence=["V1"],
                         recommended_actions=["check the audit log"])


@pytest.fixture
async def serve():
    runners = []

    async def start(app):
        port = free_port()
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for r in runners:
        await r.cleanup()


async def test_the_pd_client_reads_the_simulated_pd_over_http(serve):
    sim = PDSim("basic", "tidb-cluster", Timing())
    sim.observe_pods(PODS, T0)
    sim.observe_pods(PODS, T0 + 5)
    url = await serve(build_app(sim, clock=lambda: T0 + 6))
    pd = PDClient(url)
    try:
        stores = await pd.stores()
        assert stores["count"] == 3
        assert (await pd.health())[0]["health"] is True
        assert (await pd.region_check("pending-peer")) == {"count": 0, "regions": []}
        assert (await pd.members())["leader"]["name"] == "basic-pd-0"
    finally:
        await pd.aclose()


async def test_the_pd_client_turns_a_dead_port_into_pd_unavailable():
    pd = PDClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(PDUnavailable, match="did not answer"):
        await pd.stores()
    await pd.aclose()


async def claude_at(url, **opts):
    return ClaudeDiagnoser(anthropic.AsyncAnthropic(api_key="test-key", base_url=url, **opts), max_tokens=1024)


async def control(url, **body):
    import httpx

    async with httpx.AsyncClient() as c:
        r = await c.post(f"{url}/_control", json=body)
        r.raise_for_status()
        return (await c.get(f"{url}/_requests")).json()


async def test_structured_output_through_the_sdk_parses_into_the_answer_model(serve):
    url = await serve(fake_claude.build_app())
    await control(url, mode="answer", answer=ANSWER.model_dump())
    claude = await claude_at(url)
    got = await claude.diagnose(model="claude-sonnet-5-5", system="s", user="u")
    assert got == ANSWER
    sent = (await control(url))[-1]
    fmt = sent["body"]["output_config"]["format"]
    assert fmt["type"] == "json_schema" and fake_claude.check_schema(fmt["schema"]) == []
    assert sent["body"]["model"] == "claude-sonnet-5-5" and sent["hasApiKey"]
    await claude.aclose()


@pytest.mark.parametrize(("mode", "reason"), [("429", "ClaudeRateLimited"), ("500", "ClaudeAPIError"),
                                               ("malformed", "ClaudeMalformedOutput")])
async def test_claude_failures_after_the_sdks_retries_become_claude_unavailable(serve, mode, reason):
    url = await serve(fake_claude.build_app())
    await control(url, mode=mode, reset=True)
    claude = await claude_at(url, max_retries=2)
    with pytest.raises(ClaudeUnavailable) as e:
        await claude.diagnose(model="claude-sonnet-5-5", system="s", user="u")
    assert e.value.reason == reason
    sent = await control(url)
    assert len(sent) == (3 if mode in ("429", "500") else 1), "the SDK retried transient errors only"
    await claude.aclose()


async def test_an_answer_out_of_bounds_is_refused_and_the_rules_engine_says_why(serve):
    """A real small model served offline answered this: confidence -3.0 and refs it was never given."""
    from chaosdemo.api.models import TargetStatus
    from chaosdemo.api.timestamps import iso
    from chaosdemo.core.evidence import build_evidence
    from chaosdemo.core.grading import GroundTruth
    from chaosdemo.run.diagnosis import diagnose

    from ..unit.helpers import NOW, healthy

    url = await serve(fake_claude.build_app())
    await control(url, mode="answer", answer={**ANSWER.model_dump(), "confidence": -3.0,
                                              "cited_evidence": [f"X{i}" for i in range(60)]})
    claude = await claude_at(url, max_retries=0)
    with pytest.raises(ClaudeUnavailable) as e:
        await claude.diagnose(model="claude-sonnet-5-5", system="s", user="u")
    assert e.value.reason == "ClaudeAnswerOutOfBounds"
    assert "confidence is -3.0" in e.value.message and "cited_evidence has 60 items" in e.value.message
    d = await diagnose(build_evidence(healthy(), iso(NOW), [], {}, [], []), claude=claude, model="claude-sonnet-5-5",
                       truth=GroundTruth("pod-delete", "pod-failure", TargetStatus(pod="basic-tikv-1")))
    assert d.engine == "rules" and d.fallback_reason.startswith("ClaudeAnswerOutOfBounds: Claude's answer was refused")
    await claude.aclose()


async def test_a_slow_claude_times_out_into_claude_unavailable(serve):
    url = await serve(fake_claude.build_app())
    await control(url, mode="timeout", delay=5)
    claude = await claude_at(url, max_retries=0, timeout=0.5)
    with pytest.raises(ClaudeUnavailable) as e:
        await claude.diagnose(model="claude-sonnet-5-5", system="s", user="u")
    assert e.value.reason == "ClaudeTimeout"
    await claude.aclose()


def endless(chunk: bytes, total: int, length: bool):
    """A handler that answers 200 with ``total`` bytes of ``chunk``, with or without a Content-Length."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if length:
            resp.content_length = total
        await resp.prepare(request)
        sent = 0
        try:
            while sent < total:
                await resp.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, RuntimeError):
            pass  # the client stopped reading: what a bounded client does
        return resp

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
async def test_an_endless_pd_answer_is_cut_at_the_limit_and_named(serve, length):
    """Issue 20, finding 3: a Service of the target namespace that streams gigabytes must not take the
    operator's memory. 256 MiB offered, 1 MiB allowed: PDUnavailable names the limit, and the client
    never holds much more than the limit (seen to fail before: the whole body was read)."""
    import tracemalloc

    url = await serve(endless(b"[" + b" " * 65535, 256 * 2**20, length))
    pd = PDClient(url, timeout=30, max_body=2**20)
    tracemalloc.start()
    try:
        with pytest.raises(PDUnavailable, match=r"more than 1048576 bytes"):
            await pd.health()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await pd.aclose()
    assert peak < 8 * 2**20, f"peak {peak} bytes while reading a PD answer capped at 1 MiB"


async def test_json_nested_past_pythons_recursion_limit_is_pd_unavailable(serve):
    """Seen before the fix: 4096 nested arrays raised RecursionError out of the client, past the watch's
    handling of PD trouble."""
    url = await serve(endless(b"[" * 4096, 4096, True))
    pd = PDClient(url)
    try:
        with pytest.raises(PDUnavailable, match="nested too deep"):
            await pd.health()
    finally:
        await pd.aclose()

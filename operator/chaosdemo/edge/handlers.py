"""The kopf handlers: the only module that imports kopf's decorators (the CLI only starts kopf).

A daemon per ChaosDemo runs its lifecycle (plain async code in
``lifecycle.py``), and one per ChaosDemoSuite its steps (``run/suite.py``); kopf
resumes each after an operator restart and stops it when the object is deleted,
after which a demo's deletion handler cleans up. Watch events
on TiKV pods, StatefulSets and nodes wake the demos they are about, so
detection follows Kubernetes in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from chaosdemo.api.conditions import TERMINAL
from chaosdemo.api.errors import ChaosDemoError, Unavailable
from chaosdemo.api.models import API_GROUP, API_VERSION, PLURAL
from chaosdemo.api.settings import Settings
from chaosdemo.api.suite import SUITE_PLURAL
from chaosdemo.core.snapshot import TIKV_LABELS
from chaosdemo.edge.wiring import build_deps, build_leadership, close_deps
from chaosdemo.run.lifecycle import DemoRun, Deps, cleanup
from chaosdemo.run.suite import SuiteRun, let_go
from chaosdemo.service.leadership import LEASE_NAME, Leadership, LostLeadership
from chaosdemo.service.reconciler import keep_undoing
from chaosdemo.service.watchdog import Watchdog

FINALIZER = "chaosdemo.dev/finalizer"


Logger = logging.Logger | logging.LoggerAdapter[Any]


def _leader(memo: kopf.Memo) -> Leadership | None:
    leader: Leadership | None = memo.get("leader")
    return leader


def _deps(memo: kopf.Memo) -> Deps:
    deps: Deps = memo["deps"]
    return deps


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    # kopf's own state (handler progress, the last spec handled) goes in the status, which only the operator
    # may write (admission: write-status), not in annotations that anyone who may patch a demo can write: a
    # forged "delayed" progress or a malformed diffbase would otherwise stop its handlers for ever.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field="status.kopf.last-handled-configuration")
    settings.posting.level = logging.WARNING  # the lifecycle posts its own story as events
    settings.peering.standalone = True  # replicas coordinate through the leader Lease, not kopf peering
    settings.watching.server_timeout = 120
    cfg = Settings.from_env()
    deps = memo["deps"] = await build_deps(cfg)
    leader = memo["leader"] = build_leadership(cfg, deps.kube, deps.metrics)
    if cfg.metrics_port:
        deps.metrics.serve(cfg.metrics_port)
    if leader is not None:
        memo["election"] = asyncio.create_task(leader.run(), name="leader election")
    memo["undo"] = asyncio.create_task(keep_undoing(deps, leader.leading if leader is not None else None,
                                                    Watchdog(deps, FINALIZER, memo.get("namespaces") or ())),
                                       name="undo ledger and watchdog")
    engine = f"Claude ({cfg.claude_model})" if cfg.anthropic_api_key else "rules engine (no ANTHROPIC_API_KEY)"
    election = (f"leader election on Lease {cfg.leader_namespace}/{LEASE_NAME} as {leader.identity}"
                if leader is not None else "no leader election (one replica only)")
    served = f"metrics on :{cfg.metrics_port}/metrics" if cfg.metrics_port else "no metrics endpoint"
    logger.info("ChaosDemo operator ready; diagnosis by %s; %s; %s", engine, election, served)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    if memo.get("undo") is not None:
        memo["undo"].cancel()
    if memo.get("election") is not None:
        memo["election"].cancel()
        await memo["leader"].release()
    if "deps" in memo:
        await close_deps(_deps(memo))


@kopf.on.probe(id="ready")
def ready(memo: kopf.Memo, **_: Any) -> bool:
    return "deps" in memo


# The three watch handlers are async on purpose: kopf runs a plain function in a thread, which would
# touch the journal from outside the event loop (its asyncio.Events are not thread-safe) and time
# each event after a hop through the thread pool.
@kopf.on.event("v1", "pods", labels=TIKV_LABELS)
async def tikv_pod_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if "deps" in memo:
        _deps(memo).journal.pod_event(type or "ADDED", dict(body))


@kopf.on.event("apps", "v1", "statefulsets", labels=TIKV_LABELS)
async def tikv_statefulset_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if "deps" in memo:
        _deps(memo).journal.statefulset_event(type or "ADDED", dict(body))


@kopf.on.event("v1", "nodes")
async def node_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if "deps" in memo:
        _deps(memo).journal.node_event(type or "ADDED", dict(body))


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL


@kopf.daemon(API_GROUP, API_VERSION, PLURAL, id="lifecycle", when=_unfinished,
             cancellation_timeout=1.0, backoff=5)
async def lifecycle(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    assert namespace is not None, "ChaosDemo is namespaced"
    await _while_leading(memo, DemoRun(_deps(memo), namespace, name).run)


async def _while_leading(memo: kopf.Memo, run: Callable[[], Awaitable[None]]) -> None:
    """A daemon's work, on the leading replica only; what stops it early is retried by kopf."""
    leader = _leader(memo)
    try:
        await (run() if leader is None else leader.while_leading(run))
    except Unavailable as e:
        raise kopf.TemporaryError(f"{e.reason}: {e.message}", delay=5) from e
    except LostLeadership as e:
        raise kopf.TemporaryError(str(e), delay=1) from e


def _suite_unfinished(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return not status.get("verdict") or bool(spec.get("schedule"))


@kopf.daemon(API_GROUP, API_VERSION, SUITE_PLURAL, id="suite", when=_suite_unfinished,
             cancellation_timeout=1.0, backoff=5)
async def suite(name: str, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A ChaosDemoSuite: its steps' demos one after another (``run/suite.py``), on the leading replica."""
    assert namespace is not None, "ChaosDemoSuite is namespaced"
    await _while_leading(memo, SuiteRun(_deps(memo), namespace, name).run)


@kopf.on.delete(API_GROUP, API_VERSION, SUITE_PLURAL, id="suite-cleanup", backoff=5)
async def on_suite_delete(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    leader = _leader(memo)
    if leader is not None and not leader.leading.is_set():
        raise kopf.TemporaryError("another replica leads and cleans up; waiting", delay=5)
    try:
        gone = await let_go(_deps(memo), dict(body))
    except Unavailable as e:
        raise kopf.TemporaryError(f"{e.reason}: {e.message}", delay=5) from e
    logger.info("ChaosDemoSuite deleted, and its demos: %s", ", ".join(gone) or "none")


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL, id="cleanup", backoff=5)
async def on_delete(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    leader = _leader(memo)
    if leader is not None and not leader.leading.is_set():
        raise kopf.TemporaryError("another replica leads and cleans up; waiting", delay=5)
    try:
        done = await cleanup(_deps(memo), dict(body))
    except ChaosDemoError as e:
        raise kopf.TemporaryError(f"cleanup must finish before the demo goes: {e.reason}: {e.message}",
                                  delay=10) from e
    logger.info("ChaosDemo deleted: %s", done)

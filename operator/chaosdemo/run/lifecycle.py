"""The lifecycle of one ChaosDemo: read it, run its stages, and end it on every way out.

    begin -> preflight and target -> inject -> follow (detect, recover, agree) -> end
                                                  \\-> diagnose (beside it, never blocking recovery)

The stages are ``run/stages.py`` (and ``run/follow.py`` after the injection); what each says goes
through the story (``core/story.py``). No kopf here: the handler module calls ``DemoRun.run`` from a
daemon and ``cleanup`` from the deletion handler.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from chaosdemo.api import conditions as cond
from chaosdemo.api.errors import AbortDemo, DemoFailed, FaultUnavailable, Forbidden, RecordRefused, TargetError
from chaosdemo.api.models import ChaosDemoSpec, ChaosDemoStatus
from chaosdemo.core.story import Aborted, Ended
from chaosdemo.run import undo
from chaosdemo.run.demo import Demo, Progress
from chaosdemo.run.deps import Deps
from chaosdemo.run.felt import drop_left
from chaosdemo.run.preflight import check_record, lease_name
from chaosdemo.run.stages import begin, end, ensure_undone, run_stages
from chaosdemo.run.state import RunState
from chaosdemo.run.status_record import Record

__all__ = ["DemoRun", "Deps", "cleanup"]

_CLOSING: set[asyncio.Future[None]] = set()  # closings under way, kept from the garbage collector


class DemoRun:
    """One ChaosDemo's run, resumable from its status: a restarted operator carries on where it stopped."""

    def __init__(self, deps: Deps, namespace: str, name: str) -> None:
        self.deps, self.namespace, self.name = deps, namespace, name
        self.progress = Progress()

    async def run(self) -> None:
        body = await self.deps.kube.demos.get(self.namespace, self.name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return
        demo = Demo.read(body, Record(self.deps.kube, body, self.deps.clock, self.deps.crash))
        if demo.status.conditions and cond.compute_phase(demo.status.conditions) in cond.TERMINAL:
            return  # from the conditions: a phase field patched back to Pending does not start it again
        self.deps.metrics.in_flight.inc()
        rs: RunState | None = None
        try:
            await begin(self.deps, demo)
            rs = RunState.open(self.deps, demo, self.progress)
            await run_stages(rs)
        except AbortDemo as e:
            if demo.status.injected_at is None:
                await end(self.deps, demo, Aborted(e.reason, e.message, refused=_refused_by(e)))
            else:  # never "nothing was injected" once something was
                await self._end_failed(demo, rs, e.reason, e.message)
        except RecordRefused as e:  # the record is not the cluster's: undo nothing it names either
            await end(self.deps, demo, Ended(False, e.reason, f"{e.reason}: {e.message}"))
        except DemoFailed as e:
            await self._end_failed(demo, rs, e.reason, e.message)
        finally:
            self.deps.metrics.in_flight.dec()
            if rs is not None:
                # kopf cancels the daemon once it sees the terminal status: the closing (the SQL canary's
                # database dropped) goes on to its end in a task of its own, whatever cancels this one.
                closing = asyncio.ensure_future(rs.aclose())
                _CLOSING.add(closing)
                closing.add_done_callback(_CLOSING.discard)
                await asyncio.shield(closing)

    async def _end_failed(self, demo: Demo, rs: RunState | None, reason: str, message: str) -> None:
        if rs is not None:
            await ensure_undone(rs)
        await end(self.deps, demo, Ended(False, reason, message))


def _refused_by(e: AbortDemo) -> Literal["preflight", "target", "fault"]:
    return "fault" if isinstance(e, FaultUnavailable) else "target" if isinstance(e, TargetError) else "preflight"


async def cleanup(deps: Deps, body: dict[str, Any]) -> str:
    """A ChaosDemo is being deleted: leave the cluster no worse than the fault itself.

    Pod faults need nothing undone (the StatefulSet recreates the pod); what
    must go is this demo's hold on the cluster, so the next demo can run.
    """
    meta = body.get("metadata", {})
    spec = ChaosDemoSpec.model_validate(body.get("spec") or {})
    status = ChaosDemoStatus.model_validate(body.get("status") or {})
    ns = spec.cluster.namespace or meta.get("namespace", "")
    holder = f"{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid', '')}"
    done = []
    if status.injected_at and status.target is not None:
        fault = deps.faults(spec.fault, deps.kube, deps.docker)
        try:  # the status is no authority: what it names is confirmed from the cluster first
            if not deps.settings.may_target(str(meta.get("namespace", "")), ns):
                raise RecordRefused(f"namespace {ns} is not an allowed target", reason="RecordRefused")
            await check_record(deps.kube, ns, spec.cluster.name, status.target,
                               through_node=fault.watches_node_container)
        except RecordRefused as e:
            done.append(f"nothing undone: {e.message}")
        else:
            # A node that cannot be started yet raises, and the deletion is retried:
            # the finalizer holds until the node is back.
            done.append(await fault.undo(ns, status.target))
            await undo.forget(deps, holder)
    # A canary's database exists only once the operator took the demo up (startedAt comes first).
    if spec.canary.enabled and status.started_at and deps.settings.may_target(str(meta.get("namespace", "")), ns):
        done.append(await drop_left(deps, spec.canary, spec.cluster.name, ns, str(meta.get("uid", ""))))
    done.append(await _release(deps, str(meta.get("namespace", "")), ns, lease_name(spec.cluster.name), holder))
    return "; ".join(done)


async def _release(deps: Deps, demo_namespace: str, namespace: str, lease: str, holder: str) -> str:
    """This demo's hold on its cluster, let go; a namespace the operator may not act in holds none of ours.

    A demo refused before its preflight (a namespace not allowed, or one where the operator's
    ServiceAccount holds no Role) never took the Lease, and could not have: asking again would only
    be refused again, every retry, and the finalizer would keep the demo Terminating for ever.
    """
    if not deps.settings.may_target(demo_namespace, namespace):
        return f"no Lease to release: namespace {namespace} is not an allowed target"
    try:
        await deps.kube.leases.release(namespace, lease, holder)
    except Forbidden as e:
        return f"no Lease released: {e.message} (a demo refused there never took one)"
    return "released the cluster for other demos"

"""The lifecycle of one ChaosDemo, stage by stage, resumable from its status.

    preflight -> target -> inject -> watch (detect, then recover) -> report
                                        \\-> diagnose (concurrently, never blocking recovery)

Everything the run decides is written to status before it acts, so an
operator that restarts mid-run reads the status and carries on: it never
injects twice and always finishes the recovery wait. No kopf here: the
handler module calls ``DemoRun.run`` from a daemon and ``cleanup`` from the
deletion handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaosdemo import conditions as cond
from chaosdemo.clients.claude import ClaudeDiagnoser
from chaosdemo.clients.docker import DockerClient
from chaosdemo.clients.kube import KubeClient
from chaosdemo.clients.pd import PDClient
from chaosdemo.config import Settings
from chaosdemo.diagnosis import diagnose
from chaosdemo.errors import AbortDemo, DemoFailed, FaultUnavailable, PreflightFailed, TargetError
from chaosdemo.events import ClusterEvents
from chaosdemo.evidence import PodHistory, build_evidence, record_pod, record_pods
from chaosdemo.faults import Fault, fault_for
from chaosdemo.invariants import Breach, InvariantConfig, evaluate, pod_event_breaches, target_changed
from chaosdemo.models import ChaosDemoSpec, ChaosDemoStatus, InjectionRecord, TargetStatus
from chaosdemo.observation import Observer
from chaosdemo.preflight import check_cluster_exists, check_snapshot
from chaosdemo.snapshot import Snapshot
from chaosdemo.targeting import select_target
from chaosdemo.timeline import open_violations, update_timeline
from chaosdemo.timeutil import iso, parse_iso, seconds_between

__all__ = ["TERMINAL", "DemoRun", "Deps", "cleanup", "lease_name"]

log = logging.getLogger(__name__)

TERMINAL = frozenset({"Succeeded", "Failed", "Aborted"})
FaultFactory = Callable[[Any, KubeClient, DockerClient | None], Fault]


@dataclass
class Deps:
    """Everything a run talks to, created at the edge and injected."""

    kube: KubeClient
    settings: Settings
    events: ClusterEvents = field(default_factory=ClusterEvents)
    claude: ClaudeDiagnoser | None = None
    docker: DockerClient | None = None
    pd_transport: httpx.AsyncBaseTransport | None = None
    faults: FaultFactory = fault_for
    clock: Callable[[], float] = time.time


def lease_name(cluster: str) -> str:
    return f"chaosdemo-{cluster}"


def _summary(breaches: list[Breach], n: int = 3) -> str:
    text = "; ".join(b.message for b in breaches[:n])
    return text + (f" (+{len(breaches) - n} more)" if len(breaches) > n else "")


class DemoRun:
    def __init__(self, deps: Deps, namespace: str, name: str) -> None:
        self.deps, self.namespace, self.name = deps, namespace, name
        self.history: PodHistory = {}
        self.last_snapshot: Snapshot | None = None
        self.cursor: int | None = None
        self.container_events: list[dict[str, str]] = []
        self._last_containers: dict[str, tuple[bool, str]] = {}
        self._save_lock = asyncio.Lock()
        self.inv_cfg = InvariantConfig(heartbeat_stale_seconds=deps.settings.heartbeat_stale_seconds)

    # ------------------------------------------------------------ plumbing

    def _now(self) -> str:
        return iso(self.deps.clock())

    async def _save(self) -> None:
        async with self._save_lock:
            self.status.phase = cond.compute_phase(self.status.conditions)
            self.status.observed_generation = self.generation
            payload = self.status.model_dump(by_alias=True, exclude_none=True, mode="json")
            await self.deps.kube.patch_demo_status(self.namespace, self.name, payload)

    def _set(self, type_: str, status: str, reason: str, message: str) -> None:
        self.status.conditions = cond.set_condition(
            self.status.conditions, type_, status, reason, message, self._now(), self.generation
        )

    async def _event(self, type_: str, reason: str, message: str) -> None:
        log.info("%s/%s %s: %s", self.namespace, self.name, reason, message)
        await self.deps.kube.post_event(self.body, type_, reason, message)

    # ------------------------------------------------------------ entry point

    async def run(self) -> None:
        body = await self.deps.kube.get_demo(self.namespace, self.name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return
        self.body = body
        meta = body["metadata"]
        self.generation = int(meta.get("generation", 1))
        self.holder = f"{self.namespace}/{self.name}/{meta.get('uid', '')}"
        self.spec = ChaosDemoSpec.model_validate(body.get("spec") or {})
        self.status = ChaosDemoStatus.model_validate(body.get("status") or {})
        if self.status.conditions and self.status.phase in TERMINAL:
            return
        self.cluster = self.spec.cluster.name
        self.cluster_ns = self.spec.cluster.namespace or self.namespace
        s = self.deps.settings
        pd_url = s.pd_url(self.cluster, self.cluster_ns, self.spec.cluster.pd_url)
        pd = PDClient(pd_url, timeout=s.pd_timeout_seconds, transport=self.deps.pd_transport)
        self.observer = Observer(self.deps.kube, pd, self.cluster, self.cluster_ns, clock=self.deps.clock)
        self.fault: Fault | None = None
        try:
            await self._run()
        except AbortDemo as e:
            await self._abort(e)
        except DemoFailed as e:
            await self._ensure_recovered()
            await self._finish(False, e.reason, e.message)
        finally:
            await pd.aclose()

    async def _run(self) -> None:
        if not self.status.conditions:
            now = self._now()
            self.status.conditions = cond.initial_conditions(now, self.generation)
            self.status.started_at = now
            self.status.message = "running preflight checks"
            await self._save()
            await self._event("Normal", "Started", f"preflight of TidbCluster {self.cluster_ns}/{self.cluster}")
        fault = self.fault = self.deps.faults(self.spec.fault, self.deps.kube, self.deps.docker)
        injection = self.status.injection
        if injection is None or injection.requested_at is None:
            await self._preflight(fault)
            if self.spec.dry_run:
                self._set("FaultInjected", "False", "DryRun", "dryRun is set: nothing was injected")
                await self._finish(
                    True,
                    "DryRun",
                    f"dry run: preflight passed and {self.status.target.pod if self.status.target else '?'} "
                    "would be hit; nothing was injected",
                )
                return
            self.status.injection = InjectionRecord(action=self.spec.fault.action, requested_at=self._now())
            self._set("FaultInjected", "Unknown", "Injecting", f"{self.spec.fault.action} is being injected")
            self.status.message = f"injecting {self.spec.fault.action} into {self._target.pod}"
            await self._save()
        assert self.status.injection is not None
        # A fault that took effect before this operator could watch (it restarted
        # mid-demo) is detected from what it left on the target.
        resumed = self.status.injected_at is not None
        if not resumed:
            resumed = await self._inject(fault)
        await self._watch(fault, resumed=resumed)

    @property
    def _target(self) -> TargetStatus:
        assert self.status.target is not None
        return self.status.target

    # ------------------------------------------------------------ stages

    async def _preflight(self, fault: Fault) -> None:
        kube = self.deps.kube
        check_cluster_exists(await kube.get_tidbcluster(self.cluster_ns, self.cluster), self.cluster_ns, self.cluster)
        await self._take_lease()
        snap = await self.observer.snapshot()
        check_snapshot(snap, self.inv_cfg)
        self.history = record_pods({}, snap)
        self._set("PreflightPassed", "True", "ClusterHealthy",
                  f"{len(snap.pods)} TiKV pods Ready, {len(snap.stores)} stores Up, no unhealthy regions")
        choice = select_target(list(snap.pods), list(snap.stores), self.spec.target, self.cluster, self.cluster_ns)
        self.status.target = TargetStatus(
            pod=choice.pod.name,
            pod_uid=choice.pod.uid,
            node=choice.pod.node,
            restart_count=choice.pod.restart_count,
            store_id=choice.store.id,
            store_address=choice.store.address,
            selection=choice.selection,
        )
        await fault.check(self.cluster_ns, self.status.target)
        self._set("TargetSelected", "True", "TargetChosen",
                  f"{choice.pod.name} on node {choice.pod.node}, PD store {choice.store.id} ({choice.selection})")
        self.status.message = f"target {choice.pod.name} (store {choice.store.id}) chosen"
        await self._save()
        await self._event("Normal", "TargetSelected",
                          f"{choice.pod.name} on {choice.pod.node}, store {choice.store.id}: {choice.selection}")

    async def _take_lease(self) -> None:
        kube, name = self.deps.kube, lease_name(self.cluster)
        if self.spec.dry_run:
            # A dry run injects nothing, so it only checks that no demo holds the cluster.
            other = await kube.lease_holder(self.cluster_ns, name)
        else:
            other = await kube.acquire_lease(self.cluster_ns, name, self.holder)
        if other is None:
            return
        ons, oname, ouid = [*other.split("/"), "", "", ""][:3]
        obody = await kube.get_demo(ons, oname)
        still_active = (
            obody is not None
            and obody.get("metadata", {}).get("uid") == ouid
            and (obody.get("status") or {}).get("phase") not in TERMINAL
        )
        if not still_active and self.spec.dry_run:
            return
        if still_active or not await kube.take_over_lease(self.cluster_ns, name, other, self.holder):
            raise PreflightFailed(
                f"ChaosDemo {ons}/{oname} is already running against TidbCluster "
                f"{self.cluster_ns}/{self.cluster}; one fault at a time",
                reason="ClusterBusy",
            )

    async def _inject(self, fault: Fault) -> bool:
        """Inject and record it; True if the fault had already taken effect."""
        assert self.status.injection is not None
        started = self._now()
        self.cursor = self.deps.events.cursor()
        done = await fault.inject(self.cluster_ns, self._target)
        detail = done.detail
        self.status.injection.detail = detail
        self.status.injected_at = started
        self._set("FaultInjected", "True", "Injected", detail)
        self._set("FailureDetected", "Unknown", "Watching", "watching the invariants")
        self.status.message = f"{detail}; watching for the failure"
        await self._save()
        await self._event("Warning", "FaultInjected", detail)
        return done.already

    async def _watch(self, fault: Fault, resumed: bool = False) -> None:
        s, spec = self.deps.settings, self.spec
        assert self.status.injected_at is not None
        injected = parse_iso(self.status.injected_at)
        deadline_detect = injected + spec.timeouts.detection_seconds
        deadline_recover = injected + spec.timeouts.recovery_seconds
        self.observer.watch_nodes([self._target.node])
        if spec.fault.action in ("node-kill", "container-kill"):
            self.observer.watch_node_containers(self.deps.docker, [self._target.node])
        detected = self.status.detected_at is not None
        diag_task: asyncio.Task[None] | None = None
        if detected and self.status.diagnosis is None and spec.diagnosis.enabled:
            diag_task = asyncio.create_task(self._diagnose())
        stable_since: float | None = None
        try:
            if self.cursor is None:
                self.cursor = self.deps.events.cursor()
            while True:
                seen, self.cursor = self.deps.events.pod_events_since(self.cursor, self.cluster_ns, self.cluster)
                first_event: tuple[float, list[Breach]] | None = None
                for ev in seen:
                    at = iso(ev.received_at)
                    self.history = record_pod(self.history, ev.pod, at, deleted=ev.type == "DELETED")
                    ev_breaches = pod_event_breaches(ev.type, ev.pod)
                    if ev_breaches:
                        self.status.violations = open_violations(self.status.violations, ev_breaches, at)
                        if first_event is None:
                            first_event = (ev.received_at, ev_breaches)
                snap = await self.observer.snapshot()
                self.last_snapshot = snap
                self.history = record_pods(self.history, snap)
                self._record_containers(snap)
                if await self._restore_if_due(fault, injected, snap.taken_at):
                    continue
                breaches = evaluate(snap, self.inv_cfg)
                now = iso(snap.taken_at)
                before = list(self.status.violations)
                timeline, dropped = update_timeline(self.status.violations, breaches, now)
                changed = timeline != before or first_event is not None
                self.status.violations = timeline
                self.status.violations_dropped += dropped
                if not detected and resumed and first_event is None:
                    # The operator was down when the fault took effect; what it left on
                    # the target is the earliest evidence, timed by the replacement pod.
                    missed = target_changed(snap, self._target.pod, self._target.pod_uid,
                                            self._target.restart_count)
                    if missed:
                        pod = snap.pod(self._target.pod)
                        at = pod.created if pod is not None and pod.created else now
                        missed = [Breach(b.invariant, b.subject, f"{b.message} (seen after an operator restart)")
                                  for b in missed]
                        self.status.violations = open_violations(self.status.violations, missed,
                                                                 iso(parse_iso(at)))
                        first_event = (max(parse_iso(at), injected), missed)
                resumed = False
                if not detected:
                    if first_event is not None:
                        detected, changed = True, True
                        diag_task = await self._detected(first_event[1] + breaches, iso(first_event[0]))
                    elif breaches:
                        detected, changed = True, True
                        diag_task = await self._detected(breaches, now)
                    elif snap.taken_at > deadline_detect:
                        raise DemoFailed(
                            f"no invariant broke within {spec.timeouts.detection_seconds}s of the "
                            "injection: the fault went unnoticed",
                            reason="NotDetected",
                        )
                else:
                    if breaches:
                        if stable_since is not None:
                            changed = True
                        stable_since = None
                        if snap.taken_at > deadline_recover:
                            raise DemoFailed(
                                f"the cluster was not healthy {spec.timeouts.recovery_seconds}s after "
                                f"the injection: {_summary(breaches)}",
                                reason="RecoveryTimeout",
                            )
                        msg = f"recovering: {_summary(breaches, 2)}"
                    else:
                        if stable_since is None:
                            stable_since, changed = snap.taken_at, True
                        if snap.taken_at - stable_since >= spec.timeouts.stability_seconds:
                            break
                        msg = f"all invariants hold; confirming for {spec.timeouts.stability_seconds}s"
                    if msg != self.status.message:
                        self.status.message, changed = msg, True
                if changed:
                    await self._save()
                await self.deps.events.wait(s.poll_seconds)
        except DemoFailed:
            self._set("Recovered" if detected else "FailureDetected", "False",
                      "RecoveryTimeout" if detected else "NotDetected", "deadline passed")
            await self._await_diagnosis(diag_task)
            raise
        assert stable_since is not None
        self.status.recovered_at = iso(stable_since)
        self.status.recovery_seconds = seconds_between(self.status.injected_at, self.status.recovered_at)
        self._set("Recovered", "True", "AllInvariantsHold",
                  f"every invariant held for {spec.timeouts.stability_seconds}s; recovered "
                  f"{self.status.recovery_seconds}s after the injection")
        self.status.message = f"recovered in {self.status.recovery_seconds}s"
        await self._save()
        await self._event("Normal", "Recovered", self.status.message)
        await self._await_diagnosis(diag_task)
        await fault.recover(self.cluster_ns, self._target)
        d = self.status.diagnosis
        verdict = ""
        if d is not None:
            verdict = f"; diagnosis ({d.engine}): {d.fault_class}, " + (
                "matches the injected fault" if d.matches_injected_fault else "does NOT match the injected fault"
            )
        await self._finish(
            True,
            "Succeeded",
            f"detected in {self.status.detection_seconds}s by {self.status.detected_by}, "
            f"recovered in {self.status.recovery_seconds}s{verdict}",
        )

    def _record_containers(self, snap: Snapshot) -> None:
        """What Docker showed of the node containers, as evidence (observations, not actions)."""
        for c in snap.node_containers:
            before = self._last_containers.get(c.name)
            if (before is None or before[0]) and not c.running:
                self.container_events.append({"node": c.name, "action": "die", "at": iso(snap.taken_at),
                                              "exitCode": str(c.exit_code), "finishedAt": c.finished_at})
            elif before is not None and not before[0] and c.running:
                self.container_events.append({"node": c.name, "action": "start", "at": iso(snap.taken_at),
                                              "startedAt": c.started_at})
            self._last_containers[c.name] = (c.running, c.started_at)

    async def _restore_if_due(self, fault: Fault, injected: float, now: float) -> bool:
        """node-kill: start the node again once it has been down for nodeDownSeconds."""
        inj = self.status.injection
        if fault.restore_after is None or inj is None or inj.node_restarted_at is not None:
            return False
        if now < injected + fault.restore_after:
            return False
        self.status.message = await self._restore(fault)
        await self._save()
        return True

    async def _restore(self, fault: Fault) -> str:
        """Undo the fault (node-kill: start the node) and record when."""
        assert self.status.injection is not None
        detail = await fault.recover(self.cluster_ns, self._target)
        self.status.injection.node_restarted_at = self._now()
        await self._event("Normal", "NodeRestarted", detail)
        return detail

    async def _ensure_recovered(self) -> None:
        """Whatever ended the demo, never leave a node down."""
        inj = self.status.injection
        if self.fault is None or inj is None or self.status.injected_at is None or self.fault.restore_after is None:
            return
        if inj.node_restarted_at is None:
            try:
                await self._restore(self.fault)
            except Exception as e:  # reported here, and retried by the deletion handler
                log.exception("could not restore the node")
                await self._event("Warning", "RestoreFailed", f"{type(e).__name__}: {e}")

    async def _detected(self, breaches: list[Breach], now: str) -> asyncio.Task[None] | None:
        assert self.status.injected_at is not None
        first = breaches[0]
        self.status.detected_at = now
        self.status.detection_seconds = seconds_between(self.status.injected_at, now)
        self.status.detected_by = first.invariant
        self._set("FailureDetected", "True", "InvariantBroken", f"{first.invariant}: {first.message}")
        self._set("Recovered", "Unknown", "Waiting", "waiting for every invariant to hold")
        self.status.message = f"detected in {self.status.detection_seconds}s by {first.invariant}"
        task = None
        if self.spec.diagnosis.enabled:
            self._set("Diagnosed", "Unknown", "Diagnosing", "gathering evidence for the diagnosis")
            task = asyncio.create_task(self._diagnose())
        else:
            self._set("Diagnosed", "False", "Disabled", "spec.diagnosis.enabled is false")
        await self._event("Warning", "FailureDetected",
                          f"{first.invariant} broke {self.status.detection_seconds}s after injection: {first.message}")
        return task

    async def _diagnose(self) -> None:
        try:
            await asyncio.sleep(self.deps.settings.diagnosis_settle_seconds)
            events = await self.deps.kube.list_events(self.cluster_ns)
            started = self.status.started_at or self._now()
            t0 = parse_iso(started) - 1
            recent = [e for e in events if e.get("time") and parse_iso(str(e["time"])) >= t0]
            snap = self.last_snapshot or await self.observer.snapshot()
            tidbcluster = await self.deps.kube.get_tidbcluster(self.cluster_ns, self.cluster)
            evidence = build_evidence(snap, started, self.status.violations, self.history,
                                      recent[-self.deps.settings.events_limit:], self.container_events, tidbcluster)
            model = self.spec.diagnosis.model or self.deps.settings.claude_model
            d = await diagnose(evidence, claude=self.deps.claude, model=model,
                               action=self.spec.fault.action, target=self._target)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a diagnosis must never stop the demo
            log.exception("diagnosis failed")
            self._set("Diagnosed", "False", "DiagnosisError", f"{type(e).__name__}: {e}"[:300])
            await self._save()
            return
        self.status.diagnosis = d
        self.status.diagnosed_at = self._now()
        self._set("Diagnosed", "True", "ClaudeDiagnosed" if d.engine == "claude" else "RulesDiagnosed",
                  d.summary[:300])
        await self._save()
        await self._event(
            "Normal" if d.matches_injected_fault else "Warning",
            "Diagnosed",
            f"{d.engine}: {d.summary} [{d.fault_class}; "
            f"{'matches' if d.matches_injected_fault else 'does not match'} the injected fault]"
            + (f" (rules engine because {d.fallback_reason})" if d.fallback_reason else ""),
        )

    async def _await_diagnosis(self, task: asyncio.Task[None] | None) -> None:
        if task is None:
            return
        s = self.deps.settings
        limit = s.diagnosis_settle_seconds + s.claude_timeout_seconds * (s.claude_max_retries + 1) + 30
        try:
            await asyncio.wait_for(task, limit)
        except TimeoutError:
            self._set("Diagnosed", "False", "DiagnosisTimeout", f"no diagnosis within {limit:.0f}s")

    async def _abort(self, e: AbortDemo) -> None:
        if isinstance(e, FaultUnavailable):
            self._set("FaultInjected", "False", e.reason, f"nothing was injected: {e.message}")
        else:
            self._set("TargetSelected" if isinstance(e, TargetError) else "PreflightPassed", "False", e.reason,
                      e.message)
            self._set("FaultInjected", "False", "NotInjected", "nothing was injected")
        await self._finish(False, "Aborted", f"{e.reason}: {e.message}")

    async def _finish(self, ok: bool, reason: str, message: str) -> None:
        now = self._now()
        self.status.finished_at = now
        self.status.message = message
        self._set("Succeeded", "True" if ok else "False", reason, message)
        # Release and report before the terminal status is written: kopf stops
        # the daemon as soon as it sees a finished demo.
        with contextlib.suppress(Exception):
            await self.deps.kube.release_lease(self.cluster_ns, lease_name(self.cluster), self.holder)
        await self._event("Normal" if ok else "Warning", cond.compute_phase(self.status.conditions), message)
        await self._save()


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
        # A node that cannot be started yet raises, and the deletion is retried:
        # the finalizer holds until the node is back.
        fault = deps.faults(spec.fault, deps.kube, deps.docker)
        done.append(await fault.recover(ns, status.target))
    await deps.kube.release_lease(ns, lease_name(spec.cluster.name), holder)
    done.append("released the cluster for other demos")
    return "; ".join(done)

"""Fault injection: one small implementation per action, each safe to repeat.

Everything that depends on the action lives with its fault, so the
lifecycle never asks which action it runs: the fault class a correct
diagnosis names, whether Docker's view of the node containers is watched,
and whether (and when) the fault must be undone.

``check`` runs before anything is recorded and refuses what cannot be done
(no Docker, not a kind node). ``inject`` is called only after the intent is
in the status; when the operator restarts between the record and the call it
is called again and must not hurt the cluster twice. ``recover`` undoes what
needs undoing and may be called any number of times; ``undo_after`` says
when the lifecycle must call it (node-kill: after nodeDownSeconds; process-pause and
network-partition: after durationSeconds). What runs inside a kind node is ``node_exec.py``.

``FAULTS`` maps each action to the fault that does it. Adding an action
touches its fault here, ``FaultAction`` in the models, and a sample.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chaosdemo.api.errors import DemoFailed, DockerUnavailable, FaultUnavailable, NotAKindNode
from chaosdemo.api.models import FaultAction, FaultClass, FaultSpec, TargetStatus
from chaosdemo.clients.docker import ContainerState, DockerClient
from chaosdemo.clients.kube import KubeClient
from chaosdemo.core.grading import GroundTruth
from chaosdemo.core.snapshot import COMPONENT_LABEL, INSTANCE_LABEL, restart_count
from chaosdemo.core.targeting import owned_by
from chaosdemo.run.node_exec import (
    CONTAINERS,
    PARTITION,
    PAUSE,
    RESUME,
    UNDO_PARTITION,
    chain_of,
    run,
    sandbox_pid,
    target_container,
    target_pid,
)

__all__ = ["FAULTS", "ContainerKill", "Fault", "Injected", "NetworkPartition", "NoFault", "NodeKill", "PodDelete",
           "ProcessPause", "fault_for", "ground_truth"]


@dataclass(frozen=True)
class Injected:
    detail: str  # what was done, in a sentence
    already: bool = False  # the fault had already taken effect (an operator restarted mid-injection)


class Fault(Protocol):
    action: FaultAction
    expected_class: FaultClass  # what a correct diagnosis calls it
    node_level: bool  # it takes the whole node: a diagnosis naming the node names the fault
    watches_node_container: bool  # it goes through the kind node container, whose state Docker shows
    undo_after: float | None  # seconds after injection when ``undo`` is due; None: nothing to undo

    async def check(self, namespace: str, target: TargetStatus) -> None:
        """Refuse (FaultUnavailable) what cannot be injected here."""

    async def inject(self, namespace: str, target: TargetStatus) -> Injected:
        """Do it, unless it is already done; say what was done."""

    async def undo(self, namespace: str, target: TargetStatus) -> str:
        """Undo what must be undone; return what was done."""


@dataclass
class PodDelete:
    """pod-delete and pod-kill: delete the pod through the API (grace 0 for pod-kill)."""

    kube: KubeClient
    action: FaultAction
    grace: int
    expected_class: FaultClass = "pod-failure"
    node_level: bool = False
    watches_node_container: bool = False
    undo_after: float | None = None

    async def check(self, namespace: str, target: TargetStatus) -> None:
        return None

    async def inject(self, namespace: str, target: TargetStatus) -> Injected:
        outcome = await self.kube.cluster.delete_pod(namespace, target.pod, grace=self.grace, uid=target.pod_uid)
        if outcome == "gone":
            return Injected(f"pod {target.pod} (uid {target.pod_uid}) was already gone; nothing deleted again", True)
        return Injected(f"deleted pod {target.pod} (uid {target.pod_uid}) with grace period {self.grace}s")

    async def undo(self, namespace: str, target: TargetStatus) -> str:
        return "nothing to undo: the StatefulSet recreates the pod"


@dataclass
class NoFault:
    """none: the no-fault control. Nothing is injected; the watch that follows is judged for false alarms."""

    action: FaultAction = "none"
    expected_class: FaultClass = "no-fault"
    node_level: bool = False
    watches_node_container: bool = False
    undo_after: float | None = None

    async def check(self, namespace: str, target: TargetStatus) -> None:
        return None

    async def inject(self, namespace: str, target: TargetStatus) -> Injected:
        return Injected(f"no-fault control: nothing injected ({target.pod} would have been the target)")

    async def undo(self, namespace: str, target: TargetStatus) -> str:
        return "nothing to undo: nothing was injected"


async def _kind_node(docker: DockerClient | None, node: str) -> tuple[DockerClient, ContainerState]:
    """Docker, and the state of the kind node container ``node``; FaultUnavailable if either is missing."""
    if docker is None:
        raise FaultUnavailable("this operator has no Docker access (set DOCKER_HOST or mount the Docker socket)",
                               reason="DockerUnavailable")
    try:
        return docker, await docker.kind_node(node)
    except (DockerUnavailable, NotAKindNode) as e:
        raise FaultUnavailable(e.message, reason=e.reason) from e


@dataclass
class NodeKill:
    """node-kill: SIGKILL the kind node container, start it again after ``undo_after`` seconds."""

    docker: DockerClient | None
    undo_after: float | None
    action: FaultAction = "node-kill"
    expected_class: FaultClass = "node-failure"
    node_level: bool = True
    watches_node_container: bool = True

    async def check(self, namespace: str, target: TargetStatus) -> None:
        _, state = await _kind_node(self.docker, target.node)
        if not state.running:
            raise FaultUnavailable(f"kind node {target.node} is already down", reason="NodeAlreadyDown")

    async def inject(self, namespace: str, target: TargetStatus) -> Injected:
        docker, state = await _kind_node(self.docker, target.node)
        if not state.running:
            return Injected(f"kind node {target.node} was already down; not killed again", True)
        await docker.kill(target.node, "SIGKILL")
        return Injected(f"killed kind node {target.node} (docker kill -s SIGKILL) hosting {target.pod}; "
                        f"it stays down {self.undo_after:g}s")

    async def undo(self, namespace: str, target: TargetStatus) -> str:
        # Once the node is down, nothing here aborts: an engine that does not answer is
        # retried (DockerUnavailable is Unavailable) until the node runs again.
        docker, state = await _undo_docker(self.docker, target, f"start kind node {target.node} again")
        if state.running:
            return f"kind node {target.node} is running"
        await docker.start(target.node)
        return f"started kind node {target.node} again (docker start)"


@dataclass
class ContainerKill:
    """container-kill: SIGKILL the target's container (tikv, or pd) inside its kind node with the node's crictl."""

    docker: DockerClient | None
    kube: KubeClient
    undo_after: float | None = None
    action: FaultAction = "container-kill"
    expected_class: FaultClass = "container-crash"
    node_level: bool = False
    watches_node_container: bool = True

    async def check(self, namespace: str, target: TargetStatus) -> None:
        docker, _ = await _kind_node(self.docker, target.node)
        code, out = await docker.exec(target.node, ["crictl", "--version"])
        if code != 0:
            raise FaultUnavailable(
                f"crictl does not run in node container {target.node} (exit {code}: {out.strip()[:120]}); "
                "container-kill needs a kind node, whose image ships crictl",
                reason="NoContainerRuntimeCLI",
            )

    async def inject(self, namespace: str, target: TargetStatus) -> Injected:
        docker, _ = await _kind_node(self.docker, target.node)
        c = CONTAINERS[target.component]
        now = await self.kube.cluster.get_pod(namespace, target.pod)
        if (now is None or now["metadata"].get("uid") != target.pod_uid
                or restart_count(now) > target.restart_count):
            return Injected(f"the {c} container of {target.pod} already restarted since it was chosen; "
                            "not killed again", True)
        cid = await target_container(docker, target.node, namespace, target)
        if not cid:
            return Injected(f"no running {c} container of pod {target.pod} in {target.node}; nothing killed again",
                            True)
        # A stop with timeout 0 sends SIGKILL at once: no graceful shutdown.
        code, out = await docker.exec(target.node, ["crictl", "stop", "--timeout", "0", cid])
        if code != 0:
            raise FaultUnavailable(f"crictl stop failed in {target.node}: {out.strip()[:200]}", reason="CrictlFailed")
        return Injected(f"killed container {c} ({cid[:13]}) of pod {target.pod} in kind node {target.node} "
                        "(SIGKILL)")

    async def undo(self, namespace: str, target: TargetStatus) -> str:
        return "nothing to undo: the kubelet restarts the container"


async def _node_tools(docker: DockerClient | None, target: TargetStatus, tools: str) -> DockerClient:
    """Docker, once the target's kind node has ``tools`` (a space-separated list); FaultUnavailable if not."""
    docker, _ = await _kind_node(docker, target.node)
    code, out = await docker.exec(target.node, ["sh", "-c", f"command -v {tools}"])
    if code != 0:
        raise FaultUnavailable(f"node container {target.node} lacks one of {tools} (exit {code}: {out.strip()[:120]}); "
                               "this fault needs a kind node, whose image ships them", reason="NoNodeTools")
    return docker


@dataclass
class ProcessPause:
    """process-pause: SIGSTOP every process of the target's container (tikv, or pd) through its kind node;
    SIGCONT after ``undo_after`` seconds. Kubernetes keeps calling the pod Ready; the store (or PD member)
    goes silent."""

    docker: DockerClient | None
    undo_after: float | None
    action: FaultAction = "process-pause"
    expected_class: FaultClass = "process-hang"
    node_level: bool = False
    watches_node_container: bool = True

    async def check(self, namespace: str, target: TargetStatus) -> None:
        await _node_tools(self.docker, target, "crictl kill sed cat grep")

    async def inject(self, namespace: str, target: TargetStatus) -> Injected:
        docker, _ = await _kind_node(self.docker, target.node)
        c = CONTAINERS[target.component]
        pid, cid = await target_pid(docker, target.node, namespace, target)
        if not pid:
            return Injected(f"no running {c} container of pod {target.pod} in {target.node}; nothing paused", True)
        code, out = await run(docker, target.node, PAUSE, pid, cid)
        if code != 0:
            raise FaultUnavailable(f"SIGSTOP failed in {target.node}: {out.strip()[:200]}", reason="PauseFailed")
        if out.strip() == "already":
            return Injected(f"the {c} process of {target.pod} was already stopped; not stopped again", True)
        return Injected(f"stopped every process of container {c} of pod {target.pod} in kind node {target.node} "
                        f"(SIGSTOP, process {pid}); SIGCONT in {self.undo_after:g}s")

    async def undo(self, namespace: str, target: TargetStatus) -> str:
        pid = await _undo_in_node(self.docker, namespace, target, RESUME, "SIGCONT")
        if not pid:
            return (f"nothing to resume: pod {target.pod} has no running {CONTAINERS[target.component]} container "
                    f"in {target.node}")
        return f"resumed the {CONTAINERS[target.component]} process of {target.pod} (SIGCONT, process {pid})"


@dataclass
class NetworkPartition:
    """network-partition: drop the traffic between the TiKV pod and PD (and its peers, for pd-and-peers) with
    iptables in the pod's own network namespace, entered through its kind node; undone after ``undo_after``."""

    docker: DockerClient | None
    kube: KubeClient
    undo_after: float | None
    scope: str = "pd"
    action: FaultAction = "network-partition"
    expected_class: FaultClass = "network-partition"
    node_level: bool = False
    watches_node_container: bool = True

    async def check(self, namespace: str, target: TargetStatus) -> None:
        await _node_tools(self.docker, target, "crictl nsenter iptables grep")
        pod = await self.kube.cluster.get_pod(namespace, target.pod) or {}
        if (pod.get("spec") or {}).get("hostNetwork"):
            raise FaultUnavailable(f"pod {target.pod} uses the node's network (hostNetwork): the rules would land "
                                   f"in kind node {target.node}'s own namespace and cut off its kubelet",
                                   reason="HostNetwork")

    async def addresses(self, namespace: str, target: TargetStatus) -> list[str]:
        """The pod IPs of the TidbCluster's own PD (and, for pd-and-peers, its other TiKV) pods, and its PD
        Service's address (a rule in the pod sees the ClusterIP: kube-proxy's DNAT comes later, on the node).
        Only what the TidbCluster controls, through its StatefulSets: labels are anyone's to copy."""
        pod = await self.kube.cluster.get_pod(namespace, target.pod) or {}
        cluster = ((pod.get("metadata") or {}).get("labels") or {}).get(INSTANCE_LABEL, "")
        tc = await self.kube.cluster.get_tidbcluster(namespace, cluster) or {}
        tc_uid = str((tc.get("metadata") or {}).get("uid", ""))
        ips = [*await self._member_ips(namespace, cluster, "pd", tc_uid, "")]
        svc = await self.kube.cluster.get_service(namespace, f"{cluster}-pd") or {}
        if owned_by(svc, "TidbCluster", cluster, tc_uid):
            ips += (svc.get("spec") or {}).get("clusterIPs") or []
        if self.scope == "pd-and-peers":
            ips += await self._member_ips(namespace, cluster, "tikv", tc_uid, target.pod)
        return sorted({ip for ip in ips if ip and ip != "None" and re.fullmatch(r"[0-9a-fA-F.:]{2,45}", ip)})

    async def _member_ips(self, namespace: str, cluster: str, role: str, tc_uid: str, but: str) -> list[str]:
        sts = await self.kube.cluster.get_statefulset(namespace, f"{cluster}-{role}") or {}
        if not owned_by(sts, "TidbCluster", cluster, tc_uid):
            return []
        sts_uid = str((sts.get("metadata") or {}).get("uid", ""))
        pods = await self.kube.cluster.list_pods(namespace, f"{COMPONENT_LABEL}={role},{INSTANCE_LABEL}={cluster}",
                                                 role)
        return [str((p.get("status") or {}).get("podIP", "")) for p in pods
                if owned_by(p, "StatefulSet", f"{cluster}-{role}", sts_uid) and p["metadata"]["name"] != but]

    async def inject(self, namespace: str, target: TargetStatus) -> Injected:
        await self.check(namespace, target)  # again, at the moment of the act
        docker, _ = await _kind_node(self.docker, target.node)
        pid = await sandbox_pid(docker, target.node, namespace, target)
        if not pid:
            raise FaultUnavailable(f"pod {target.pod} has no running sandbox in {target.node}", reason="NoSandbox")
        ips = await self.addresses(namespace, target)
        if not ips:
            raise FaultUnavailable(f"no address of PD found for {target.pod}", reason="NoPDAddress")
        code, out = await run(docker, target.node, PARTITION, pid, chain_of(target), *ips)
        if code != 0:
            raise FaultUnavailable(f"iptables failed in {target.node}: {out.strip()[:200]}", reason="PartitionFailed")
        if out.strip() == "already":
            return Injected(f"{target.pod} was already cut off; not cut again", True)
        what = "PD and the other TiKV stores" if self.scope == "pd-and-peers" else "PD"
        return Injected(f"cut {target.pod} off from {what} ({', '.join(ips)}) with iptables in its network "
                        f"namespace, through kind node {target.node}; undone after {self.undo_after:g}s")

    async def undo(self, namespace: str, target: TargetStatus) -> str:
        """The chain removed, then looked for: the undo is done only when no rule of it is left, or the pod's
        sandbox (and its network namespace with the rules) is gone; a container restarting meanwhile does
        not matter, the sandbox outlives it."""
        docker, _ = await _undo_docker(self.docker, target, f"undo the partition of {target.pod}")
        pid = await sandbox_pid(docker, target.node, namespace, target)
        if not pid:
            return f"nothing to undo: pod {target.pod} has no sandbox in {target.node}, nor its network namespace"
        code, out = await run(docker, target.node, UNDO_PARTITION, pid, chain_of(target))
        if code != 0:
            raise DemoFailed(f"undoing the partition failed in {target.node}: {out.strip()[:200]}",
                             reason="UndoFailed")
        return (f"undid the partition of {target.pod} (its iptables chain removed, and none of it left in its "
                f"network namespace, entered through its sandbox, process {pid})")


async def _undo_in_node(docker: DockerClient | None, namespace: str, target: TargetStatus, script: str,
                        what: str) -> str:
    """Run an undo ``script`` against the target's process (tikv or pd) in its node: its PID, or '' when it has none
    (the container or pod is gone, and what was done to it with it)."""
    docker, _ = await _undo_docker(docker, target, f"undo the fault on {target.pod}")
    pid, cid = await target_pid(docker, target.node, namespace, target)
    if pid:
        code, out = await run(docker, target.node, script, pid, cid)
        if code != 0:
            raise DemoFailed(f"{what} failed in {target.node}: {out.strip()[:200]}", reason="UndoFailed")
    return pid


async def _undo_docker(docker: DockerClient | None, target: TargetStatus,
                       what: str) -> tuple[DockerClient, ContainerState]:
    """Docker and the target's kind node, for an undo (``what``, said in the refusal): an engine that does not
    answer is retried (Unavailable); no Docker access at all, or a container that is no kind node, fails."""
    if docker is None:
        raise DemoFailed(f"this operator must {what} and has no Docker access (set DOCKER_HOST or mount the "
                         "Docker socket)", reason="UndoFailed")
    try:
        return docker, await docker.kind_node(target.node)
    except NotAKindNode as e:
        raise DemoFailed(f"cannot {what}: {e.message}", reason="UndoFailed") from e


FaultFactory = Callable[[FaultSpec, KubeClient, DockerClient | None], Fault]

FAULTS: dict[str, FaultFactory] = {
    "pod-delete": lambda spec, kube, docker: PodDelete(kube, "pod-delete", spec.effective_grace_period()),
    "pod-kill": lambda spec, kube, docker: PodDelete(kube, "pod-kill", spec.effective_grace_period()),
    "container-kill": lambda spec, kube, docker: ContainerKill(docker, kube),
    "node-kill": lambda spec, kube, docker: NodeKill(docker, float(spec.effective_node_down_seconds())),
    "process-pause": lambda spec, kube, docker: ProcessPause(docker, float(spec.effective_duration())),
    "network-partition": lambda spec, kube, docker: NetworkPartition(
        docker, kube, float(spec.effective_duration()), spec.effective_partition_scope()),
    "none": lambda spec, kube, docker: NoFault(),
}


def fault_for(spec: FaultSpec, kube: KubeClient, docker: DockerClient | None) -> Fault:
    """The fault that does ``spec.action``; an action nobody implements is refused, never guessed."""
    make = FAULTS.get(spec.action)
    if make is None:
        raise FaultUnavailable(f"no fault implements action {spec.action!r} (known: {', '.join(FAULTS)})",
                               reason="UnknownAction")
    return make(spec, kube, docker)


def ground_truth(fault: Fault, target: TargetStatus) -> GroundTruth:
    """What a diagnosis of this fault is graded against: on a PD target (target.role pd-leader), whatever hit
    its pod or process, PD lost its leader."""
    expected: FaultClass = ("pd-leader-loss" if target.component == "pd" and fault.expected_class != "no-fault"
                            else fault.expected_class)
    return GroundTruth(fault.action, expected, target, node_level=fault.node_level)

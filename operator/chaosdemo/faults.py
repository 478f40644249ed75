"""Fault injection: one small implementation per action, each safe to repeat.

``inject`` is called only after the intent is recorded in status; when the
operator restarts between the record and the call, it is called again and
must not hurt the cluster twice. The pod faults achieve this with a uid
precondition on the deletion. ``recover`` undoes what needs undoing (nothing,
for pod faults: the StatefulSet recreates the pod).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chaosdemo.clients.kube import KubeClient
from chaosdemo.errors import FaultUnavailable
from chaosdemo.models import FaultSpec, TargetStatus

__all__ = ["Fault", "PodDelete", "fault_for"]


class Fault(Protocol):
    action: str

    async def inject(self, namespace: str, target: TargetStatus) -> str:
        """Do it; return what was done, in a sentence."""

    async def recover(self, namespace: str, target: TargetStatus) -> str:
        """Undo what must be undone; return what was done."""


@dataclass
class PodDelete:
    """pod-delete and pod-kill: delete the pod through the API (grace 0 for pod-kill)."""

    kube: KubeClient
    action: str
    grace: int

    async def inject(self, namespace: str, target: TargetStatus) -> str:
        outcome = await self.kube.delete_pod(namespace, target.pod, grace=self.grace, uid=target.pod_uid)
        if outcome == "gone":
            return f"pod {target.pod} (uid {target.pod_uid}) was already gone; nothing deleted again"
        return f"deleted pod {target.pod} (uid {target.pod_uid}) with grace period {self.grace}s"

    async def recover(self, namespace: str, target: TargetStatus) -> str:
        return "nothing to undo: the StatefulSet recreates the pod"


def fault_for(spec: FaultSpec, kube: KubeClient) -> Fault:
    if spec.action in ("pod-delete", "pod-kill"):
        return PodDelete(kube=kube, action=spec.action, grace=spec.effective_grace_period())
    raise FaultUnavailable(
        f"action {spec.action} is not available in this operator build: it needs the "
        "Docker-level fault support (kind node containers)",
        reason="ActionNotAvailable",
    )

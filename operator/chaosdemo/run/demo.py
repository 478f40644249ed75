"""One ChaosDemo as a run sees it: who it is, what it asks, its record, and what the run holds between stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaosdemo.api.models import ChaosDemoSpec, ChaosDemoStatus, TargetStatus
from chaosdemo.core.snapshot import Snapshot
from chaosdemo.core.step import WatchState
from chaosdemo.run.status_record import Record

__all__ = ["Demo", "Progress"]


@dataclass(frozen=True)
class Demo:
    """The ChaosDemo as read when its run starts. Its status lives in ``rec``, which writes it."""

    rec: Record
    spec: ChaosDemoSpec
    holder: str  # who holds the cluster's Lease: namespace/name/uid of this demo
    cluster: str
    cluster_ns: str

    @classmethod
    def read(cls, body: dict[str, Any], rec: Record) -> Demo:
        meta = body["metadata"]
        spec = ChaosDemoSpec.model_validate(body.get("spec") or {})
        return cls(rec=rec, spec=spec, holder=f"{rec.namespace}/{rec.name}/{meta.get('uid', '')}",
                   cluster=spec.cluster.name, cluster_ns=spec.cluster.namespace or rec.namespace)

    @property
    def status(self) -> ChaosDemoStatus:
        return self.rec.status

    @property
    def uid(self) -> str:
        return self.holder.rsplit("/", 1)[1]

    @property
    def target(self) -> TargetStatus:
        """The chosen target; only asked for once the preflight (or the status) named one."""
        assert self.status.target is not None, "no target chosen yet"
        return self.status.target


@dataclass
class Progress:
    """What a run carries from look to look: the pure step's state, the last snapshot, the journal cursor."""

    watch: WatchState = field(default_factory=WatchState)
    last_snapshot: Snapshot | None = None
    cursor: int | None = None

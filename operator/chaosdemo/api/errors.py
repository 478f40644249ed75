"""The errors of ChaosDemo, each saying what happens next.

    ChaosDemoError             base; ``reason`` is a CamelCase word for conditions
    ├── AbortDemo              nothing was injected and nothing will be: phase Aborted
    │   ├── PreflightFailed    the cluster is not fit for a fault (already hurt, busy, missing)
    │   ├── TargetError        the target cannot be chosen or is not a TiKV pod of the cluster
    │   └── FaultUnavailable   the action cannot run here (no Docker, not a kind node)
    ├── DemoFailed             the fault was injected and the demo failed: phase Failed
    │   └── RecordRefused      the status names what the cluster does not confirm: Failed, nothing touched
    ├── NotAKindNode           Docker: the container is missing or is not a kind node; never touched
    └── Unavailable            an outside system did not answer; worth a retry
        ├── Forbidden          the API server refused the operator (HTTP 403): a stage may end the demo
        ├── PDUnavailable
        ├── DockerUnavailable
        └── ClaudeUnavailable

The handler module maps ``Unavailable`` to kopf's temporary errors; everything
else ends the demo with the reason in its status. The clients raise their own
errors (``NotAKindNode``, ``DockerUnavailable``); the stage that called them
decides what they mean for the demo (``faults.py`` turns them into an abort).
"""

from __future__ import annotations

__all__ = [
    "AbortDemo",
    "ChaosDemoError",
    "ClaudeUnavailable",
    "DemoFailed",
    "DockerUnavailable",
    "FaultUnavailable",
    "Forbidden",
    "NotAKindNode",
    "PDUnavailable",
    "PreflightFailed",
    "RecordRefused",
    "TargetError",
    "Unavailable",
]


class ChaosDemoError(Exception):
    reason = "Error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class AbortDemo(ChaosDemoError):
    reason = "Aborted"


class PreflightFailed(AbortDemo):
    reason = "PreflightFailed"


class TargetError(AbortDemo):
    reason = "TargetInvalid"


class FaultUnavailable(AbortDemo):
    reason = "FaultUnavailable"


class DemoFailed(ChaosDemoError):
    reason = "Failed"


class RecordRefused(DemoFailed):
    """The run's own record (its status) names a target the cluster does not confirm. Status is written by
    whoever may patch it, so the run ends Failed without touching anything, the fault's undo included."""

    reason = "RecordRefused"


class NotAKindNode(ChaosDemoError):
    reason = "NotAKindNode"


class Unavailable(ChaosDemoError):
    reason = "Unavailable"


class Forbidden(Unavailable):
    """The operator's own rights do not reach it (for example a namespace it holds no Role in)."""

    reason = "Forbidden"


class PDUnavailable(Unavailable):
    reason = "PDUnavailable"


class PDLeaderless(PDUnavailable):
    """PD answered, but as a member that knows no leader: it is electing one (``core.pd_moves``)."""


class DockerUnavailable(Unavailable):
    reason = "DockerUnavailable"


class ClaudeUnavailable(Unavailable):
    reason = "ClaudeUnavailable"

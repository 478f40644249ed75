"""Conditions, the record of a demo, and the phase computed from them.

One condition per stage plus the summary ``Succeeded``; all start Unknown the
first time the operator sees the demo. The phase is a display value and is
only ever computed here, from the conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from chaosdemo.api.models import Condition, ConditionType, Phase

__all__ = ["CONDITION_TYPES", "TERMINAL", "compute_phase", "get", "initial_conditions", "outcome", "set_condition"]

CONDITION_TYPES: tuple[ConditionType, ...] = get_args(ConditionType)
TERMINAL: frozenset[Phase] = frozenset({"Succeeded", "Failed", "Aborted"})


def initial_conditions(now: str, generation: int) -> list[Condition]:
    return [
        Condition(
            type=t,
            status="Unknown",
            reason="NotStarted",
            message="",
            last_transition_time=now,
            observed_generation=generation,
        )
        for t in CONDITION_TYPES
    ]


def get(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: ConditionType,
    status: str,
    reason: str,
    message: str,
    now: str,
    generation: int,
) -> list[Condition]:
    """A copy of ``conditions`` with one set; the transition time moves only on a status change."""
    old = get(conditions, type_)
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=old.last_transition_time if old is not None and old.status == status else now,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


def _is(conditions: Sequence[Condition], type_: ConditionType, status: str) -> bool:
    c = get(conditions, type_)
    return c is not None and c.status == status


def outcome(ok: bool, reason: str) -> Phase:
    """The terminal phase of a demo that ends with this summary."""
    return "Succeeded" if ok else "Aborted" if reason == "Aborted" else "Failed"


def compute_phase(conditions: Sequence[Condition]) -> Phase:
    summary = get(conditions, "Succeeded")
    if summary is not None and summary.status in ("True", "False"):
        return outcome(summary.status == "True", summary.reason)
    injected = get(conditions, "FaultInjected")
    if injected is None or injected.status != "True":
        return "Injecting" if injected is not None and injected.reason == "Injecting" else "Pending"
    if not _is(conditions, "FailureDetected", "True"):
        return "Detecting"
    if _is(conditions, "Diagnosed", "Unknown"):
        return "Diagnosing"
    return "Recovering"

"""The violation timeline: which invariants broke, when, and when they held again.

Kept bounded so a flapping cluster cannot grow the status without limit:
the oldest cleared entries go first, and the status counts what was dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from chaosdemo.api.models import Violation
from chaosdemo.core.invariants import Breach

__all__ = ["MAX_VIOLATIONS", "open_violations", "update_timeline"]

MAX_VIOLATIONS = 50


def update_timeline(
    timeline: Sequence[Violation],
    breaches: Sequence[Breach],
    now: str,
    *,
    limit: int = MAX_VIOLATIONS,
) -> tuple[list[Violation], int]:
    """Open entries for new breaches, clear entries that hold again; return (timeline, dropped)."""
    current = {(b.invariant, b.subject): b for b in breaches}
    out: list[Violation] = []
    open_keys = set()
    for v in timeline:
        key = (v.invariant, v.subject)
        if v.cleared is None:
            if key in current:
                open_keys.add(key)
                out.append(v)
            else:
                out.append(v.model_copy(update={"cleared": now}))
        else:
            out.append(v)
    for key, b in current.items():
        if key not in open_keys:
            out.append(
                Violation(
                    invariant=b.invariant, subject=b.subject, message=b.message, first_seen=now
                )
            )
    dropped = 0
    while len(out) > limit:
        idx = next((i for i, v in enumerate(out) if v.cleared is not None), 0)
        out.pop(idx)
        dropped += 1
    return out, dropped


def open_violations(timeline: Sequence[Violation], breaches: Sequence[Breach], at: str) -> list[Violation]:
    """Open entries for breaches seen in watch events; clearing is left to the next snapshot."""
    open_keys = {(v.invariant, v.subject) for v in timeline if v.cleared is None}
    out = list(timeline)
    for b in breaches:
        if (b.invariant, b.subject) not in open_keys:
            open_keys.add((b.invariant, b.subject))
            out.append(Violation(invariant=b.invariant, subject=b.subject, message=b.message, first_seen=at))
    return out

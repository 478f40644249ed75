"""Which demos the operator has stopped handling, and why (pure): a demo kopf cannot handle is reported,
never silently stuck.

Two shapes are seen from the demo alone: a deletion whose handler has not let the demo go long after it was
asked (its fault may still be in place: the undo ledger undoes it once overdue, and this says so), and a demo
the operator never took up (no condition long after it was created). Either is posted as a Warning Event on
the demo and counted, once per demo and reason.
"""

from __future__ import annotations

from typing import Any

from chaosdemo.api.timestamps import parse_iso

__all__ = ["STUCK_SECONDS", "stuck"]

STUCK_SECONDS = 300.0


def _age(at: object, now: float) -> float | None:
    try:
        return now - parse_iso(str(at)) if at else None
    except ValueError:
        return None


def stuck(demo: dict[str, Any], now: float, finalizer: str, grace: float = STUCK_SECONDS) -> str:
    """Why the operator has stopped handling ``demo`` (a ChaosDemo as the API server returns it), or ''."""
    meta, status = demo.get("metadata") or {}, demo.get("status") or {}
    deleting = _age(meta.get("deletionTimestamp"), now)
    if deleting is not None:
        if finalizer in (meta.get("finalizers") or []) and deleting > grace:
            return (f"being deleted for {deleting:.0f}s and the operator's deletion handler has not let it go; "
                    "a fault it holds is undone by the undo ledger once overdue")
        return ""
    created = _age(meta.get("creationTimestamp"), now)
    if not status.get("conditions") and created is not None and created > grace:
        return f"not taken up by the operator {created:.0f}s after it was created"
    return ""

"""Grading: does the diagnosis agree with what the operator actually injected?

The operator knows the ground truth (the action and the target), which no
monitoring tool does; grading turns each demo into a test of the diagnosis.
"""

from __future__ import annotations

from chaosdemo.answer import DiagnosisAnswer
from chaosdemo.models import FaultClass, TargetStatus

__all__ = ["EXPECTED_CLASS", "grade"]

EXPECTED_CLASS: dict[str, FaultClass] = {
    "pod-delete": "pod-failure",
    "pod-kill": "pod-failure",
    "container-kill": "container-crash",
    "node-kill": "node-failure",
}


def grade(answer: DiagnosisAnswer, action: str, target: TargetStatus) -> tuple[bool, str]:
    """(matches, explanation): the class must match, and the pod (or for node-kill the node)."""
    expected = EXPECTED_CLASS.get(action, "unknown")
    class_ok = answer.fault_class == expected
    pod_ok = answer.affected_pod == target.pod
    node_ok = bool(target.node) and answer.affected_node == target.node
    place_ok = pod_ok or (action == "node-kill" and node_ok)
    parts = [
        f"fault class {answer.fault_class} {'matches' if class_ok else 'does not match'} "
        f"{action} (expected {expected})",
        f"affected pod {answer.affected_pod or '(none)'} "
        f"{'matches' if pod_ok else 'differs from'} target {target.pod}",
    ]
    if action == "node-kill":
        parts.append(
            f"affected node {answer.affected_node or '(none)'} "
            f"{'matches' if node_ok else 'differs from'} {target.node}"
        )
    if target.store_id:
        store_ok = answer.affected_store == target.store_id
        parts.append(
            f"store {answer.affected_store or '(none)'} "
            f"{'matches' if store_ok else 'differs from'} {target.store_id}"
        )
    return class_ok and place_ok, "; ".join(parts)

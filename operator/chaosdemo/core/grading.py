"""Grading: does the diagnosis agree with what the operator actually injected?

The operator knows the ground truth (the action and the target), which no
monitoring tool does; grading turns each demo into a test of the diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosdemo.api.models import DiagnosisAnswer, FaultClass, TargetStatus

__all__ = ["GroundTruth", "grade", "unknown_citations"]


@dataclass(frozen=True)
class GroundTruth:
    """What was injected, as the fault that did it describes it."""

    action: str
    expected_class: FaultClass
    target: TargetStatus
    node_level: bool = False  # the fault hit the node: naming the node is as good as naming the pod


def unknown_citations(answer: DiagnosisAnswer, known: frozenset[str]) -> list[str]:
    """The refs the answer cites that are not in the evidence it was given, in its order, once each."""
    return list(dict.fromkeys(c for c in answer.cited_evidence if c not in known))


def grade(answer: DiagnosisAnswer, truth: GroundTruth, known: frozenset[str] | None = None) -> tuple[bool, str]:
    """(matches, explanation): the class must match, and the pod (or for a node-level fault the node); with
    no fault, the class alone. With ``known`` (the evidence's refs), an answer citing a ref not among them is
    not trusted: it never matches."""
    target, expected = truth.target, truth.expected_class
    class_ok = answer.fault_class == expected
    parts = [f"fault class {answer.fault_class} {'matches' if class_ok else 'does not match'} "
             f"{truth.action} (expected {expected})"]
    invented = unknown_citations(answer, known) if known is not None else []
    if invented:
        parts.append(f"cites {', '.join(invented[:5])}, not in the evidence: not trusted")
    if expected == "no-fault":
        return class_ok and not invented, "; ".join(parts)
    pod_ok = answer.affected_pod == target.pod
    node_ok = bool(target.node) and answer.affected_node == target.node
    place_ok = pod_ok or (truth.node_level and node_ok)
    parts.append(f"affected pod {answer.affected_pod or '(none)'} "
                 f"{'matches' if pod_ok else 'differs from'} target {target.pod}")
    if truth.node_level:
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
    return class_ok and place_ok and not invented, "; ".join(parts)

"""Cases for the diagnosis benchmark, as the operator sees them: the evidence and the ground truth.

Off by default. With ``record_evidence`` set, every diagnosis's evidence (the very bundle the engine got,
bounded and scrubbed) is logged with what was injected as one JSON line after ``CASE_MARK``; a dry run
logs the evidence of the healthy cluster its preflight saw, with no fault: a control. ``chaosdemo eval``
reads such cases from ``tests/data/diagnosis-corpus``, where the kind tier's bench writes them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from chaosdemo.api.timestamps import iso
from chaosdemo.core.evidence import Evidence
from chaosdemo.core.grading import GroundTruth
from chaosdemo.core.history import remember_pods
from chaosdemo.core.snapshot import Snapshot
from chaosdemo.run.demo import Demo
from chaosdemo.run.deps import Deps
from chaosdemo.run.diagnosis import collect_evidence

__all__ = ["CASE_MARK", "case_of", "log_case", "log_control"]

log = logging.getLogger(__name__)
CASE_MARK = "chaosdemo-evidence-case"


def case_of(demo: str, at: float, evidence: Evidence, truth: GroundTruth | None) -> dict[str, Any]:
    """One case: the demo (namespace/name), when, what was injected (None: nothing, a control), the evidence."""
    injected = None if truth is None else {
        "action": truth.action, "expectedClass": truth.expected_class, "nodeLevel": truth.node_level,
        "target": truth.target.model_dump(by_alias=True, exclude={"selection"})}
    return {"demo": demo, "recordedAt": iso(at), "injected": injected,
            "evidence": evidence.model_dump(mode="json", by_alias=True)}


def log_case(deps: Deps, demo: Demo, evidence: Evidence, truth: GroundTruth | None) -> None:
    if deps.settings.record_evidence:
        case = case_of(f"{demo.rec.namespace}/{demo.rec.name}", deps.clock(), evidence, truth)
        log.info("%s %s", CASE_MARK, json.dumps(case, separators=(",", ":")))


async def log_control(deps: Deps, demo: Demo, snap: Snapshot) -> None:
    """A dry run's healthy cluster, as the evidence of a diagnosis would show it: a no-fault case."""
    if not deps.settings.record_evidence:
        return
    evidence = await collect_evidence(
        deps.kube, snap, started_at=demo.status.started_at or demo.rec.now(), violations=[],
        history=remember_pods({}, snap), container_events=[], events_limit=deps.settings.events_limit)
    log_case(deps, demo, evidence, None)

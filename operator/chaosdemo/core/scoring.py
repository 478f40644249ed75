"""The diagnosis benchmark's scoring: an engine's answers over a corpus of recorded cases (pure).

A case is the evidence bundle the operator built for a demo and what was injected (nothing, for a
control). Each answer is scored for its class, the pod, store and node it names, the refs it cites
(how many are in the evidence), its stated confidence (Brier score: the squared gap between the
confidence and whether the class was right), and graded as a demo is (``grading.grade``, refs checked).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from chaosdemo.api.models import DiagnosisAnswer, FaultClass, TargetStatus
from chaosdemo.core.evidence import Evidence, evidence_refs
from chaosdemo.core.grading import GroundTruth, grade, unknown_citations

__all__ = ["Case", "Outcome", "Scored", "load_case", "render", "report", "score"]

CONTROL: FaultClass = "no-fault"
_CLASS: TypeAdapter[FaultClass] = TypeAdapter(FaultClass)


@dataclass(frozen=True)
class Case:
    id: str
    truth: GroundTruth
    evidence: Evidence
    recorded: dict[str, Any] = field(default_factory=dict)


def load_case(doc: dict[str, Any]) -> Case:
    """A case from its JSON (tests/data/diagnosis-corpus/*.json); ``injected: null`` is a control."""
    inj = doc.get("injected")
    if inj is None:
        truth = GroundTruth(action="none", expected_class=CONTROL, target=TargetStatus())
    else:
        truth = GroundTruth(action=str(inj["action"]), expected_class=_CLASS.validate_python(inj["expectedClass"]),
                            target=TargetStatus.model_validate(inj["target"]), node_level=bool(inj.get("nodeLevel")))
    return Case(id=str(doc["id"]), truth=truth, evidence=Evidence.model_validate(doc["evidence"]),
                recorded=dict(doc.get("recorded") or {}))


@dataclass(frozen=True)
class Outcome:
    """One engine's answer to one case (None when it gave none: ``error`` says why), and what it cost."""

    case: Case
    answer: DiagnosisAnswer | None
    seconds: float | None = None
    tokens: tuple[int, int] | None = None  # input, output
    error: str = ""


@dataclass(frozen=True)
class Scored:
    case_id: str
    expected: str
    predicted: str
    class_ok: bool
    pod_ok: bool
    store_ok: bool | None  # None: the case names no store
    node_ok: bool | None  # None: the case names no node
    cited: int
    invented: tuple[str, ...]
    matches: bool
    brier: float


def score(o: Outcome) -> Scored:
    truth, t = o.case.truth, o.case.truth.target
    a = o.answer
    if a is None:
        return Scored(o.case.id, truth.expected_class, "(no answer)", False, False, None if not t.store_id else False,
                      None if not t.node else False, 0, (), False, 1.0)
    refs = evidence_refs(o.case.evidence)
    class_ok = a.fault_class == truth.expected_class
    control = truth.expected_class == CONTROL
    confidence = min(max(a.confidence, 0.0), 1.0)
    return Scored(
        case_id=o.case.id, expected=truth.expected_class, predicted=a.fault_class, class_ok=class_ok,
        pod_ok=a.affected_pod == ("" if control else t.pod),
        store_ok=None if not (t.store_id or control) else a.affected_store == t.store_id,
        node_ok=None if not (t.node or control) else a.affected_node == t.node,
        cited=len(a.cited_evidence), invented=tuple(unknown_citations(a, refs)),
        matches=grade(a, truth, refs)[0], brier=round((confidence - (1.0 if class_ok else 0.0)) ** 2, 4))


def _share(values: list[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 3) if known else None


def _group(rows: list[Scored]) -> dict[str, Any]:
    return {"cases": len(rows), "class": _share([r.class_ok for r in rows]), "pod": _share([r.pod_ok for r in rows]),
            "store": _share([r.store_ok for r in rows]), "node": _share([r.node_ok for r in rows]),
            "graded": _share([r.matches for r in rows]),
            "brier": round(statistics.fmean(r.brier for r in rows), 4) if rows else None}


def report(outcomes: list[Outcome], engine: str) -> dict[str, Any]:
    """Per expected class and overall: accuracy of the class, pod, store and node, the graded share (class and
    place right, no invented ref), the Brier score; the confusion matrix; citations; cost when measured."""
    rows = [score(o) for o in outcomes]
    classes = sorted({r.expected for r in rows})
    confusion: dict[str, dict[str, int]] = {c: dict(Counter(r.predicted for r in rows if r.expected == c))
                                            for c in classes}
    out: dict[str, Any] = {
        "engine": engine, "overall": _group(rows),
        "byClass": {c: _group([r for r in rows if r.expected == c]) for c in classes},
        "confusion": confusion,
        "citations": {"cited": sum(r.cited for r in rows), "invented": sum(len(r.invented) for r in rows),
                      "casesCitingNothing": sum(1 for r in rows if r.cited == 0),
                      "casesWithInvented": [r.case_id for r in rows if r.invented]},
        "errors": {o.case.id: o.error for o in outcomes if o.error},
        "cases": [r.__dict__ | {"invented": list(r.invented)} for r in rows],
    }
    timed = [o.seconds for o in outcomes if o.seconds is not None]
    tokens = [o.tokens for o in outcomes if o.tokens is not None]
    if timed:
        out["seconds"] = {"mean": round(statistics.fmean(timed), 3), "max": round(max(timed), 3)}
    if tokens:
        out["tokens"] = {"inputMean": round(statistics.fmean(t[0] for t in tokens)),
                         "outputMean": round(statistics.fmean(t[1] for t in tokens))}
    return out


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def render(rep: dict[str, Any]) -> str:
    """The report as Markdown tables: per class, then the confusion matrix, citations and cost."""
    lines = [f"engine: {rep['engine']}", "",
             "| expected class | cases | class | pod | store | node | graded | Brier |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, g in [*rep["byClass"].items(), ("**overall**", rep["overall"])]:
        brier = "-" if g["brier"] is None else f"{g['brier']:.3f}"
        lines.append(f"| {name} | {g['cases']} | {_pct(g['class'])} | {_pct(g['pod'])} | {_pct(g['store'])} | "
                     f"{_pct(g['node'])} | {_pct(g['graded'])} | {brier} |")
    predicted = sorted({p for row in rep["confusion"].values() for p in row})
    lines += ["", "| expected \\ answered | " + " | ".join(predicted) + " |",
              "| --- | " + " | ".join("---" for _ in predicted) + " |"]
    for c, row in rep["confusion"].items():
        lines.append(f"| {c} | " + " | ".join(str(row.get(p, 0) or ".") for p in predicted) + " |")
    cit = rep["citations"]
    lines += ["", f"citations: {cit['cited']} refs cited, {cit['invented']} not in the evidence "
                  f"({len(cit['casesWithInvented'])} cases); {cit['casesCitingNothing']} answers cited nothing"]
    if "seconds" in rep:
        mean, worst = rep["seconds"]["mean"], rep["seconds"]["max"]
        lines.append(f"latency per case: mean {mean * 1000:.1f} ms, max {worst * 1000:.1f} ms" if worst < 1
                     else f"latency per case: mean {mean:.2f} s, max {worst:.2f} s")
    if "tokens" in rep:
        lines.append(f"tokens per case: {rep['tokens']['inputMean']} in, {rep['tokens']['outputMean']} out (mean)")
    if rep["errors"]:
        lines.append(f"no answer in {len(rep['errors'])} cases: " + "; ".join(
            f"{k}: {v}" for k, v in list(rep["errors"].items())[:5]))
    return "\n".join(lines)

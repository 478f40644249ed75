"""The diagnosis benchmark's scoring, on cases made here (pure): the recorded corpus is tests/unit/test_corpus.py."""

from __future__ import annotations

import json

from chaosdemo.api.models import DiagnosisAnswer
from chaosdemo.api.timestamps import iso
from chaosdemo.core.evidence import build_evidence
from chaosdemo.core.history import remember_pod, remember_pods
from chaosdemo.core.rules import diagnose_by_rules
from chaosdemo.core.scoring import Outcome, load_case, render, report

from .helpers import NOW, healthy, pod
from .test_diagnosis_pure import START, TARGET, TIMELINE


def case(case_id: str, injected: dict[str, object] | None, *pod_states: object) -> dict[str, object]:
    history = remember_pods({}, healthy(taken_at=NOW - 30))
    for i, p in enumerate(pod_states):
        history = remember_pod(history, p, iso(NOW - 20 + i))  # type: ignore[arg-type]
    ev = build_evidence(healthy(), START, TIMELINE if injected else [], history, [], [])
    return {"id": case_id, "recorded": {"tier": "unit"}, "injected": injected,
            "evidence": json.loads(ev.model_dump_json(by_alias=True))}


KILL = {"action": "pod-kill", "expectedClass": "pod-failure", "nodeLevel": False,
        "target": TARGET.model_dump(by_alias=True)}
CASES = [load_case(case("kill", KILL, pod("basic-tikv-1", deleting=True), pod("basic-tikv-1", uid="u2"))),
         load_case(case("control", None))]


def test_the_rules_engine_is_right_on_both_and_a_wrong_confident_answer_costs_its_brier() -> None:
    rules = report([Outcome(c, diagnose_by_rules(c.evidence)) for c in CASES], "rules")
    assert rules["overall"]["graded"] == 1.0 and rules["overall"]["class"] == 1.0
    assert rules["confusion"] == {"no-fault": {"no-fault": 1}, "pod-failure": {"pod-failure": 1}}
    wrong = DiagnosisAnswer(summary="", root_cause="", fault_class="container-crash", affected_pod="basic-tikv-1",
                            affected_store="2", affected_node="", confidence=0.9, evidence=[], cited_evidence=["V1"],
                            recommended_actions=[])
    rep = report([Outcome(CASES[0], wrong, seconds=1.5, tokens=(1000, 200)), Outcome(CASES[1], None, error="x")],
                 "claude")
    assert rep["overall"]["class"] == 0.0 and rep["overall"]["pod"] == 0.5  # the pod was right on the fault
    assert rep["byClass"]["pod-failure"]["brier"] == 0.81  # (0.9 - 0)^2
    assert rep["confusion"]["pod-failure"] == {"container-crash": 1}
    assert rep["tokens"] == {"inputMean": 1000, "outputMean": 200} and rep["errors"] == {"control": "x"}
    text = render(rep)
    assert "| pod-failure | 1 | 0% | 100% | 100% | 0% | 0% | 0.810 |" in text  # no node named: wrong


def test_an_invented_citation_is_counted_and_the_case_is_not_graded_right() -> None:
    answer = diagnose_by_rules(CASES[0].evidence)
    invented = answer.model_copy(update={"cited_evidence": [*answer.cited_evidence, "E7"]})
    rep = report([Outcome(CASES[0], invented)], "claude")
    assert rep["overall"]["class"] == 1.0 and rep["overall"]["graded"] == 0.0
    assert rep["citations"]["invented"] == 1 and rep["citations"]["casesWithInvented"] == ["kill"]

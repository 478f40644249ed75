"""The recorded corpus (tests/data/diagnosis-corpus): what it covers, and the rules engine right on all of it.

The cases were recorded on the kind tier by ``make bench-kind RECORD=tests/data/diagnosis-corpus``: the
evidence bundles the operator built for real demos there, and the ground truth it knew.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import get_args

from chaosdemo.api.models import FaultAction
from chaosdemo.core.scoring import report
from chaosdemo.core.scrub import MAX_TEXT
from chaosdemo.service.evaluate import load_corpus, run_rules

CORPUS = Path(__file__).resolve().parents[1] / "data" / "diagnosis-corpus"
CASES = load_corpus(CORPUS)


def test_the_corpus_covers_every_action_on_several_targets_the_controls_and_the_look_alikes() -> None:
    targets: dict[str, set[str]] = defaultdict(set)
    for c in CASES:
        targets[c.truth.action].add(c.truth.target.pod)
        assert c.recorded["tier"].startswith("kind") and c.recorded["at"] and c.recorded["commit"], c.id
    assert set(get_args(FaultAction)) <= targets.keys(), sorted(targets)
    assert all(len(targets[a]) >= 2 for a in get_args(FaultAction) if a not in ("node-kill", "none")), dict(targets)
    assert sum(1 for c in CASES if c.truth.expected_class == "no-fault") >= 2, "healthy controls"
    distracted = [c for c in CASES if any(e.reason == "OOMKilling" for e in c.evidence.kubernetes_events)]
    assert len(distracted) >= 2 and all(c.truth.expected_class == "pod-failure" for c in distracted)
    assert targets["pod-kill"] & targets["container-kill"], "a pod-kill and a container-kill of the same pod"
    pd = [c for c in CASES if c.truth.expected_class == "pd-leader-loss"]
    assert len(pd) >= 2 and all(c.truth.target.component == "pd" for c in pd), "PD's leader killed, twice"


def test_the_rules_engine_is_right_on_every_recorded_case_and_cites_only_what_is_there() -> None:
    rep = report(run_rules(CASES), "rules")
    wrong = [(r["case_id"], r["expected"], r["predicted"]) for r in rep["cases"] if not r["matches"]]
    assert wrong == [], wrong
    assert rep["citations"]["invented"] == 0 and rep["citations"]["casesCitingNothing"] == 0


def test_the_bundles_are_bounded_and_hold_no_secret() -> None:
    for f in CORPUS.glob("*.json"):
        text = f.read_text()
        assert "sk-ant-" not in text and "BEGIN PRIVATE KEY" not in text, f.name
        doc = json.loads(text)
        assert all(len(e["message"]) <= MAX_TEXT for e in doc["evidence"]["kubernetesEvents"]), f.name


def test_what_tidbs_clients_felt_joins_the_rules_answer_with_its_ref_and_never_changes_its_class() -> None:
    """A hung leader holds its rows' statements; a store cut off from PD alone keeps serving: the canary's
    rows per leader store (refs Q) are cited by the answer about that store, whose class stays the same."""
    from chaosdemo.core.evidence import ClientRows, evidence_refs, with_refs
    from chaosdemo.core.rules import diagnose_by_rules

    for case_id, failed in (("process-pause-0", 27), ("network-partition-0", 0)):
        case = next(c for c in CASES if c.id == case_id)
        before = diagnose_by_rules(case.evidence)
        rows = [ClientRows(leader_store=s.id, ok=100, failed=failed if s.id == before.affected_store else 0)
                for s in case.evidence.pd_stores]
        ev = with_refs(case.evidence.model_copy(update={"tidb_clients": rows}))
        after = diagnose_by_rules(ev)
        assert (after.fault_class, after.affected_pod) == (before.fault_class, before.affected_pod)
        cited = [r for r in after.cited_evidence if r.startswith("Q")]
        assert len(cited) == 1 and set(after.cited_evidence) <= evidence_refs(ev), after.cited_evidence
        said = after.evidence[-1]
        assert ("27 statements" in said) if failed else ("none failed" in said), said

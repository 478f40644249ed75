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
    assert all(len(targets[a]) >= 2 for a in get_args(FaultAction) if a != "node-kill"), dict(targets)
    assert sum(1 for c in CASES if c.truth.expected_class == "no-fault") >= 2, "healthy controls"
    distracted = [c for c in CASES if any(e.reason == "OOMKilling" for e in c.evidence.kubernetes_events)]
    assert len(distracted) >= 2 and all(c.truth.expected_class == "pod-failure" for c in distracted)
    assert targets["pod-kill"] & targets["container-kill"], "a pod-kill and a container-kill of the same pod"


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

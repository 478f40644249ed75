"""A model's answer is untrusted input (issue 30): an answer out of bounds is refused whole, and the rules
engine stands in saying why. A real small model served offline answered confidence -3.0, cited refs that
were not in the evidence, and looped until max_tokens; these are its shapes."""

import math

import pytest
from pydantic import ValidationError

from chaosdemo.api.models import ANSWER_LISTS, ANSWER_TEXT, Diagnosis, DiagnosisAnswer, answer_out_of_bounds

GOOD = {"summary": "TiKV pod basic-tikv-1 was deleted.", "root_cause": "deleted", "fault_class": "pod-failure",
        "affected_pod": "basic-tikv-1", "affected_store": "2", "affected_node": "w1", "confidence": 0.8,
        "evidence": ["uid changed"], "cited_evidence": ["V1"], "recommended_actions": ["check the audit log"]}


def test_an_answer_within_bounds_is_taken() -> None:
    assert answer_out_of_bounds(DiagnosisAnswer(**GOOD)) == []


@pytest.mark.parametrize(("change", "said"), [
    ({"confidence": -3.0}, "confidence is -3.0"),
    ({"confidence": 1.5}, "confidence is 1.5"),
    ({"confidence": math.nan}, "confidence is nan"),
    ({"summary": "loop " * 1000}, "summary is 5000 characters"),
    ({"cited_evidence": [f"V{i}" for i in range(500)]}, "cited_evidence has 500 items"),
    ({"recommended_actions": ["restart"] * 11}, "recommended_actions has 11 items"),
    ({"evidence": ["x" * 501]}, "evidence[0] is 501 characters"),
    ({"affected_pod": "p" * 254}, "affected_pod is 254 characters"),
])
def test_an_answer_out_of_bounds_is_refused_whole_saying_what(change: dict, said: str) -> None:
    with pytest.raises(ValidationError) as e:
        DiagnosisAnswer(**{**GOOD, **change})
    assert "answer out of bounds" in str(e.value) and said in str(e.value)


def test_the_bounds_are_said_to_the_model_in_the_schema_it_is_sent() -> None:
    props = DiagnosisAnswer.model_json_schema()["properties"]
    for name, limit in ANSWER_TEXT.items():
        if name.startswith("affected"):
            continue  # names and ids: their shapes say enough
        assert f"at most {limit} characters" in props[name]["description"], name
    for name, (items, _) in ANSWER_LISTS.items():
        assert f"at most {items}" in props[name]["description"], name
    assert "from 0 to 1" in props["confidence"]["description"]


def test_a_diagnosis_read_back_from_a_status_is_not_refused() -> None:
    """A Diagnosis is made clipped from a bounded answer; one an older operator wrote still reads."""
    d = Diagnosis(**{**GOOD, "summary": "s" * 900, "engine": "claude"})
    assert len(d.summary) == 900

"""Diagnosis: Claude when it is configured and answers, the rules engine otherwise.

Both engines read the same evidence. The result records which engine spoke
and, when the rules engine stood in, why Claude did not.
"""

from __future__ import annotations

import logging

from chaosdemo.answer import DiagnosisAnswer
from chaosdemo.clients.claude import ClaudeDiagnoser
from chaosdemo.errors import ClaudeUnavailable
from chaosdemo.evidence import Evidence
from chaosdemo.grading import grade
from chaosdemo.models import Diagnosis, TargetStatus
from chaosdemo.prompt import SYSTEM_PROMPT, build_user_prompt
from chaosdemo.rules import diagnose_by_rules

__all__ = ["diagnose"]

log = logging.getLogger(__name__)


async def diagnose(
    evidence: Evidence,
    *,
    claude: ClaudeDiagnoser | None,
    model: str,
    action: str,
    target: TargetStatus,
) -> Diagnosis:
    answer: DiagnosisAnswer
    engine, fallback = "rules", ""
    if claude is None:
        fallback = "no Anthropic API key is configured (ANTHROPIC_API_KEY)"
        answer = diagnose_by_rules(evidence)
    else:
        try:
            answer = await claude.diagnose(
                model=model, system=SYSTEM_PROMPT, user=build_user_prompt(evidence)
            )
            engine = "claude"
        except ClaudeUnavailable as e:
            log.warning("Claude diagnosis failed (%s); the rules engine answers", e.reason)
            fallback = f"{e.reason}: {e.message}"
            answer = diagnose_by_rules(evidence)
    matches, grading = grade(answer, action, target)
    return Diagnosis(
        engine=engine,
        model=model if engine == "claude" else "",
        fallback_reason=fallback,
        summary=answer.summary,
        root_cause=answer.root_cause,
        fault_class=answer.fault_class,
        affected_pod=answer.affected_pod,
        affected_store=answer.affected_store,
        affected_node=answer.affected_node,
        confidence=min(max(answer.confidence, 0.0), 1.0),
        evidence=[e[:300] for e in answer.evidence[:10]],
        recommended_actions=[a[:300] for a in answer.recommended_actions[:10]],
        matches_injected_fault=matches,
        grading=grading,
    )

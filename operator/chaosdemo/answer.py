"""The structured answer a diagnosis engine gives, Claude's or the rules engine's.

Claude is asked for exactly this shape through the SDK's structured output
(``messages.parse(output_format=DiagnosisAnswer)``), so extra keys are refused.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chaosdemo.models import FaultClass

__all__ = ["DiagnosisAnswer"]


class DiagnosisAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="One sentence: what failed.")
    root_cause: str = Field(description="The root cause, as specific as the evidence allows.")
    fault_class: FaultClass = Field(description="The class of fault.")
    affected_pod: str = Field(description="Name of the affected TiKV pod, or empty.")
    affected_store: str = Field(description="PD store id of the affected store, or empty.")
    affected_node: str = Field(description="Name of the affected node, or empty.")
    confidence: float = Field(description="Confidence between 0 and 1.")
    evidence: list[str] = Field(description="The observations this diagnosis rests on.")
    recommended_actions: list[str] = Field(description="Concrete next steps for an operator.")

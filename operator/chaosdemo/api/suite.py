"""The ChaosDemoSuite API: demos in order on one TidbCluster, no-fault controls among them, on a schedule.

A suite runs each of its steps as an ordinary ChaosDemo that it owns (an ownerReference, and the labels below),
one after another, so everything that reads a demo (watch, report, metrics, the dashboard) reads each step.
Its spec is frozen once it exists, as a demo's is, and the admission policy checks every step's rights
against the suite's creator (``deploy/admission-policy.yaml``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from chaosdemo.api.models import (
    _SPEC_RULES,
    DNS_LABEL,
    CanarySpec,
    ClusterRef,
    DiagnosisSpec,
    FaultSpec,
    TargetSpec,
    TimeoutsSpec,
    _cel,
    _Model,
)

__all__ = [
    "RUN_LABEL",
    "STEP_LABEL",
    "SUITE_KIND",
    "SUITE_LABEL",
    "SUITE_PLURAL",
    "ChaosDemoSuiteSpec",
    "ChaosDemoSuiteStatus",
    "SuitePhase",
    "SuiteRunSummary",
    "SuiteStep",
    "SuiteStepStatus",
    "SuiteTotals",
]

SUITE_KIND = "ChaosDemoSuite"
SUITE_PLURAL = "chaosdemosuites"
SUITE_LABEL = "chaosdemo.dev/suite"  # on each demo a suite made: the suite's name
RUN_LABEL = "chaosdemo.dev/suite-run"  # which run of it
STEP_LABEL = "chaosdemo.dev/suite-step"  # and which step
MAX_STEPS = 20
MAX_NAME = 40  # a suite's name: its demos are named <suite>-r<run>-<step>, within a label value's 63

SuitePhase = Literal["Pending", "Running", "Waiting", "Succeeded", "Failed"]
StepPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Aborted", "Skipped"]

# A cron schedule of five fields (minute hour day-of-month month day-of-week): numbers, *, lists, ranges, steps.
_CRON_FIELD = r"(\*|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?(,(\*|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?)*"
CRON = rf"^({_CRON_FIELD} ){{4}}{_CRON_FIELD}$"


class SuiteStep(_Model):
    """One demo of the suite: a ChaosDemo's spec without its cluster (the suite's), under a name."""

    model_config = ConfigDict(json_schema_extra=_SPEC_RULES)  # a demo's own rules, refused here already

    name: str = Field(min_length=1, max_length=12, pattern=DNS_LABEL,
                      description="The step's name, unique in the suite; its demo is <suite>-r<run>-<name>.")
    fault: FaultSpec = Field(default_factory=FaultSpec, description="The fault; action none makes the step a "
                             "no-fault control, judged like the rest: anything detected on it is a false alarm.")
    target: TargetSpec = Field(default_factory=TargetSpec,
                               description="Which pod receives the fault: a TiKV, or PD's leader (role pd-leader).")
    timeouts: TimeoutsSpec = Field(default_factory=TimeoutsSpec, description="Deadlines for this step's demo.")
    diagnosis: DiagnosisSpec = Field(default_factory=DiagnosisSpec, description="Its root-cause diagnosis.")
    canary: CanarySpec = Field(default_factory=CanarySpec, description="Its SQL canary and budget.")


class ChaosDemoSuiteSpec(_Model):
    """Demos in order on one TidbCluster, judged each, with a verdict for the whole run."""

    model_config = ConfigDict(json_schema_extra=_cel(
        ("self.steps.all(a, self.steps.exists_one(b, b.name == a.name))", "step names must be unique"),
    ))

    cluster: ClusterRef = Field(description="The TidbCluster every step runs against.")
    steps: list[SuiteStep] = Field(min_length=1, max_length=MAX_STEPS, description="The demos, in order.")
    pause_seconds: int = Field(default=30, ge=0, le=3600, description="Seconds between the end of one step "
                               "and the start of the next, so the cluster settles.")
    stop_on_failure: bool = Field(default=True, description="Stop the run at the first step that does not "
                                  "succeed; the steps after it are skipped.")
    schedule: str = Field(default="", max_length=100, pattern=rf"^({CRON[1:-1]})?$",
                          description="A cron schedule (five fields, UTC) that starts a new run each time; empty: "
                          "one run, at once.")
    history_limit: int = Field(default=3, ge=1, le=20, description="Runs whose demos are kept; older runs' demos "
                               "are deleted when a new run starts.")


class SuiteStepStatus(_Model):
    """One step of the current run, read from its demo."""

    name: str = Field(description="The step.")
    demo: str = Field(default="", description="Its ChaosDemo, once created.")
    action: str = Field(default="", description="The fault it injects (none: a control).")
    phase: StepPhase = Field(default="Pending", description="Its demo's phase, or Skipped.")
    reason: str = Field(default="", max_length=100, description="Why it ended as it did.")
    message: str = Field(default="", max_length=300, description="Its demo's last message.")
    detection_seconds: float | None = Field(default=None, description="From its demo.")
    recovery_seconds: float | None = Field(default=None, description="From its demo.")
    diagnosis_matches: bool | None = Field(default=None, description="Whether its diagnosis named the injected "
                                           "fault; empty when there was none.")
    budget_held: bool | None = Field(default=None, description="Whether its SQL canary's budget held; empty "
                                     "without a canary.")
    false_alarm: bool = Field(default=False, description="A control on which something was detected.")
    finished_at: str | None = Field(default=None, description="When it ended; the pause before the next step "
                                    "counts from here.")


class SuiteTotals(_Model):
    """The run's steps, counted."""

    passed: int = Field(default=0, description="Steps whose demo Succeeded.")
    failed: int = Field(default=0, description="Steps whose demo Failed or was Aborted.")
    false_alarms: int = Field(default=0, description="Controls on which something was detected.")
    skipped: int = Field(default=0, description="Steps not run (stopOnFailure).")


class SuiteRunSummary(_Model):
    """A finished run, kept in the history."""

    run: int = Field(ge=1, le=999_999, description="Its number.")
    verdict: str = Field(description="Succeeded or Failed.")
    started_at: str | None = Field(default=None, description="When it started.")
    finished_at: str | None = Field(default=None, description="When it ended.")
    totals: SuiteTotals = Field(default_factory=SuiteTotals, description="Its steps, counted.")


class ChaosDemoSuiteStatus(_Model):
    """Where the suite is; written only by the operator."""

    phase: SuitePhase = Field(default="Pending", description="Running a run, Waiting for the next (schedule), "
                              "or the verdict of its only run.")
    message: str = Field(default="", max_length=500, description="What is happening now, for people.")
    run: int = Field(default=0, ge=0, le=999_999, description="The current (or last) run's number.")
    started_at: str | None = Field(default=None, description="When that run started.")
    finished_at: str | None = Field(default=None, description="When it ended.")
    next_run_at: str | None = Field(default=None, description="When the schedule starts the next run.")
    verdict: str = Field(default="", description="The run's verdict once it ended: Succeeded or Failed.")
    steps: list[SuiteStepStatus] = Field(default_factory=list, max_length=MAX_STEPS, description="Its steps.")
    totals: SuiteTotals = Field(default_factory=SuiteTotals, description="Its steps, counted.")
    history: list[SuiteRunSummary] = Field(default_factory=list, max_length=20, description="Earlier runs, "
                                           "newest first, at most historyLimit.")

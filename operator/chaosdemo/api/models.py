"""The ChaosDemo API as pydantic models: the one source of truth.

The CRD's OpenAPI schema in ``crds/chaosdemo.yaml`` is generated from these
models (``chaosdemo crd``), and a test fails when the file and the models
drift apart. Field descriptions here become ``kubectl explain`` output, so
they are written for the SRE who types the spec.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "DEFAULT_DURATION_SECONDS",
    "DEFAULT_GRACE_PERIOD_SECONDS",
    "DEFAULT_NODE_DOWN_SECONDS",
    "HELD_ACTIONS",
    "KIND",
    "PD_LEADER_ACTIONS",
    "PLURAL",
    "CanaryBudget",
    "CanarySpec",
    "ChaosDemoSpec",
    "ChaosDemoStatus",
    "ClusterRef",
    "Condition",
    "ConditionType",
    "Diagnosis",
    "DiagnosisAnswer",
    "DiagnosisSpec",
    "FaultAction",
    "FaultClass",
    "FaultSpec",
    "ImpactStatus",
    "InjectionRecord",
    "PartitionScope",
    "Phase",
    "TargetSpec",
    "TargetStatus",
    "TimeoutsSpec",
    "Violation",
]

API_GROUP = "chaosdemo.dev"
# How the operator signs the Events it posts on a demo (the plugin reports only those).
EVENT_SOURCE = "chaosdemo-operator"
REPORTING_COMPONENT = "chaosdemo.dev/operator"
API_VERSION = "v1alpha1"
KIND = "ChaosDemo"
PLURAL = "chaosdemos"

FaultAction = Literal["pod-delete", "pod-kill", "container-kill", "node-kill", "process-pause", "network-partition",
                      "none"]
CONTROL = "none"  # the no-fault control: everything a demo does, but nothing is injected
HELD_ACTIONS = ("process-pause", "network-partition")  # held for durationSeconds, then undone
PartitionScope = Literal["pd", "pd-and-peers"]
TargetRole = Literal["most-leaders", "pd-leader"]
# What a PD member may be hit with: the actions on one pod or its process (node-kill and network-partition are
# aimed at TiKV's node and peers). Kept in step with the CEL rule below and ``core.targeting``.
PD_LEADER_ACTIONS = ("pod-delete", "pod-kill", "container-kill", "process-pause", "none")
TargetComponent = Literal["tikv", "pd"]
FaultClass = Literal[
    "pod-failure",
    "container-crash",
    "node-failure",
    "process-hang",
    "network-partition",
    "pd-leader-loss",
    "disk-failure",
    "resource-exhaustion",
    "no-fault",
    "unknown",
]
Phase = Literal[
    "Pending",
    "Injecting",
    "Detecting",
    "Diagnosing",
    "Recovering",
    "Succeeded",
    "Failed",
    "Aborted",
]

# One condition per stage, and the summary.
ConditionType = Literal[
    "PreflightPassed",
    "TargetSelected",
    "FaultInjected",
    "FailureDetected",
    "Diagnosed",
    "Recovered",
    "Succeeded",
]

DEFAULT_GRACE_PERIOD_SECONDS = 30
DEFAULT_NODE_DOWN_SECONDS = 30
DEFAULT_DURATION_SECONDS = 30

# RFC 1123 names, as Kubernetes checks them for namespaces, pods and services.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """Attach CEL validation rules (rule, message) to a schema node."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=False
    )


# A Service's URL as the operator accepts it: http(s)://<service>[.<namespace>[.svc[.cluster.local]]][:<port>][/]
_PD_SERVICE = (r"^https?://[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?"
               r"([.]svc([.]cluster[.]local)?)?)?(:[0-9]+)?/?$")
_PD_HOST = "self.pdURL.split('/')[2].split(':')[0].split('.')"


class ClusterRef(_Model):
    """Which TidbCluster the demo runs against."""

    # What the operator would refuse at run time (PDURLRefused) is refused here already: pdURL names a
    # Service of the target namespace, bare or qualified with that namespace (CEL cannot see the demo's
    # own namespace, so a qualified host needs cluster.namespace set).
    model_config = ConfigDict(json_schema_extra=_cel((
        "!has(self.pdURL) || self.pdURL == '' "
        f"|| (self.pdURL.matches('{_PD_SERVICE}') && ({_PD_HOST}.size() == 1 "
        f"|| (has(self.namespace) && {_PD_HOST}[1] == self.namespace)))",
        "pdURL must name a Service of the target namespace: http://<service>:<port>, or "
        "http://<service>.<cluster.namespace>[.svc]:<port> with cluster.namespace set",
    )))

    name: str = Field(
        description="Name of the TidbCluster (tidb-operator's pingcap.com/v1alpha1) to test.",
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL,
    )
    namespace: str = Field(
        default="",
        description="Namespace of the TidbCluster. Empty means the ChaosDemo's own namespace.",
        max_length=63,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$",
    )
    pd_url: str = Field(
        default="",
        alias="pdURL",
        description=(
            "Base URL of PD's HTTP API. Empty means http://<name>-pd.<namespace>.svc:2379, "
            "the client service tidb-operator creates."
        ),
        max_length=253,
        pattern=r"^(https?://[^\s/]+(:[0-9]+)?/?)?$",
    )


class FaultSpec(_Model):
    """What fault to inject, and how hard."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!has(self.gracePeriodSeconds) || self.action == 'pod-delete'",
                "gracePeriodSeconds applies only to action pod-delete "
                "(pod-kill always uses grace period 0)",
            ),
            (
                "!has(self.nodeDownSeconds) || self.action == 'node-kill'",
                "nodeDownSeconds applies only to action node-kill",
            ),
            (
                "!has(self.durationSeconds) || self.action in ['process-pause', 'network-partition']",
                "durationSeconds applies only to actions process-pause and network-partition",
            ),
            (
                "!has(self.partitionScope) || self.action == 'network-partition'",
                "partitionScope applies only to action network-partition",
            ),
        )
    )

    action: FaultAction = Field(
        default="pod-delete",
        description=(
            "pod-delete: delete the TiKV pod through the API with its grace period; the "
            "StatefulSet recreates it. pod-kill: the same with grace period 0. "
            "container-kill: SIGKILL the tikv container inside its kind node through Docker; "
            "the kubelet restarts it in the same pod. node-kill: docker kill the kind node "
            "that hosts the pod, and start it again after nodeDownSeconds. process-pause: SIGSTOP "
            "every process of the tikv container through its kind node, SIGCONT after durationSeconds "
            "(the pod stays Ready; the store goes silent). network-partition: drop the traffic between "
            "the TiKV pod and PD (partitionScope pd-and-peers: and the other TiKV stores) in the pod's "
            "own network namespace, through its kind node; undone after durationSeconds (the pod stays "
            "Ready; PD stops hearing the store). none: a no-fault control: preflight, target and SQL canary "
            "as for a fault, but nothing is injected; the demo watches for detectionSeconds and Succeeds if no "
            "invariant broke, or Fails with FalseAlarm if one did."
        ),
    )
    grace_period_seconds: int | None = Field(
        default=None,
        description=(
            f"pod-delete only: termination grace period of the deletion in seconds. "
            f"Defaults to {DEFAULT_GRACE_PERIOD_SECONDS}."
        ),
        ge=0,
        le=3600,
    )
    node_down_seconds: int | None = Field(
        default=None,
        description=(
            f"node-kill only: how long the kind node stays down before the operator starts "
            f"it again. Defaults to {DEFAULT_NODE_DOWN_SECONDS}."
        ),
        ge=1,
        le=3600,
    )

    duration_seconds: int | None = Field(
        default=None,
        description=(
            f"process-pause and network-partition only: how long the fault is held before the operator "
            f"undoes it (SIGCONT, or the partition removed). Defaults to {DEFAULT_DURATION_SECONDS}."
        ),
        ge=1,
        le=3600,
    )
    partition_scope: PartitionScope | None = Field(
        default=None,
        description=(
            "network-partition only: pd cuts the TiKV pod off from PD (its pods and its Service's "
            "address); pd-and-peers cuts it off from the other TiKV stores too. Defaults to pd."
        ),
    )

    def effective_duration(self) -> int:
        return DEFAULT_DURATION_SECONDS if self.duration_seconds is None else self.duration_seconds

    def effective_partition_scope(self) -> PartitionScope:
        return self.partition_scope or "pd"

    def effective_grace_period(self) -> int:
        if self.action == "pod-kill":
            return 0
        if self.grace_period_seconds is None:
            return DEFAULT_GRACE_PERIOD_SECONDS
        return self.grace_period_seconds

    def effective_node_down_seconds(self) -> int:
        if self.node_down_seconds is None:
            return DEFAULT_NODE_DOWN_SECONDS
        return self.node_down_seconds


class TargetSpec(_Model):
    """Which pod to hit: a TiKV pod, or PD's leader (role pd-leader)."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!(has(self.pod) && self.pod != '' && has(self.seed))",
                "set either pod (a named target) or seed (a reproducible random choice), not both",
            ),
            (
                "!(has(self.role) && ((has(self.pod) && self.pod != '') || has(self.seed)))",
                "role chooses the target from PD's live view: set it without pod and seed",
            ),
        )
    )

    pod: str = Field(
        default="",
        description=(
            "Name of the TiKV pod to hit. It must be a TiKV pod of the cluster. "
            "Empty means a random TiKV pod."
        ),
        max_length=253,
        pattern=r"^(" + DNS_SUBDOMAIN[1:-1] + r")?$",
    )
    seed: int | None = Field(
        default=None,
        description="Seed for the random choice of the TiKV pod, so that a run can be repeated.",
        ge=0,
    )
    role: TargetRole | None = Field(
        default=None,
        description=(
            "Choose the target by its role, from PD's live view when the target is chosen: most-leaders is "
            "the TiKV store holding the most region leaders, whose loss costs TiDB's clients most (equals: the "
            "lowest pod name); pd-leader is the PD member that leads PD (its pod, with pod-delete, pod-kill, "
            "container-kill or process-pause; refused when losing it would leave PD below its quorum). The "
            "status records what PD said. Not with pod or seed."
        ),
    )


class TimeoutsSpec(_Model):
    """How long each wait may take."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "self.recoverySeconds >= self.detectionSeconds",
                "recoverySeconds must be at least detectionSeconds",
            ),
        )
    )

    detection_seconds: int = Field(
        default=120,
        description=(
            "How long to wait, after the fault is injected, for an invariant to break. "
            "If none breaks in time the demo fails: the fault went unnoticed. For a no-fault control "
            "(action none), its window: it holds if none breaks in this time."
        ),
        ge=5,
        le=3600,
    )
    recovery_seconds: int = Field(
        default=600,
        description=(
            "How long to wait, after the fault is injected, for every invariant to hold "
            "again for stabilitySeconds. If the cluster is not healthy by then the demo fails."
        ),
        ge=10,
        le=7200,
    )
    stability_seconds: int = Field(
        default=10,
        description=(
            "How long every invariant must hold without a break before the cluster counts "
            "as recovered."
        ),
        ge=0,
        le=600,
    )


class DiagnosisSpec(_Model):
    """Whether and how to ask Claude for a root-cause diagnosis."""

    enabled: bool = Field(
        default=True,
        description=(
            "Ask for a root-cause diagnosis once the failure is detected. Claude is asked when "
            "the operator has an API key; otherwise a deterministic rules engine answers."
        ),
    )
    model: str = Field(
        default="",
        description=(
            "Claude model id, e.g. claude-sonnet-5-5. Empty means the operator's configured "
            "default (CHAOSDEMO_CLAUDE_MODEL)."
        ),
        max_length=100,
        pattern=r"^([a-z0-9][a-z0-9.\-]*)?$",
    )




class CanaryBudget(_Model):
    """The steady-state hypothesis: what the database's users may feel while the fault lasts."""

    max_unavailable_seconds: float = Field(
        default=20, ge=0.1, le=3600,
        description="The longest stretch in which no canary statement may succeed. Default 20: one TiKV "
        "election (10 s) after a leader lease (9 s) runs out.")
    min_throughput_share: float = Field(
        default=0.5, ge=0, le=1,
        description="The lowest share of the baseline throughput (successful statements a second, averaged over "
        "10 s) the canary may fall to. Default 0.5: PingCAP's QA expects a one-TiKV fault to drop QPS by less "
        "than 50%.")
    max_statement_seconds: float = Field(
        default=2, ge=0.1, le=60,
        description="The longest a single statement on the rows the broken store did not lead may take, a "
        "timed-out one counting its statementTimeoutSeconds. Default 2: tipocket's availability bound. The rows "
        "it led wait for an election (about 10 s on TiKV) whatever the fault, so they are held to the throughput, "
        "unavailable and serve-again bounds instead; before the injection every statement is held to it.")
    serve_again_seconds: float = Field(
        default=120, ge=1, le=7200,
        description="How long after the injection users must be served again (throughput and the longest "
        "statement within this budget for the stability window). Default 120: PingCAP's QA expects QPS back "
        "within 2 minutes.")


class CanarySpec(_Model):
    """A SQL canary the operator runs against the TidbCluster's own TiDB, to measure what its users felt."""

    enabled: bool = Field(
        default=True,
        description="Run the canary through the demo: a small bank table in a database of its own, read, "
        "written and transferred between at a fixed rate from a baseline before the injection until the "
        "cluster recovered, against the TidbCluster's TiDB Service on port 4000 as root with no password "
        "(tidb-operator's default). false: the demo measures the components alone.")
    rate_per_second: int = Field(default=20, ge=1, le=100,
                                 description="Statements a second, issued on a fixed schedule whatever happens "
                                 "to them (each under statementTimeoutSeconds).")
    accounts: int = Field(default=64, ge=8, le=1024, description="Rows in the canary's bank table.")
    statement_timeout_seconds: float = Field(
        default=5, ge=0.2, le=30, description="How long the canary waits for one statement before it counts a "
        "timeout and drops the connection.")
    baseline_seconds: int = Field(
        default=10, ge=3, le=300, description="How long the canary runs before the injection: the baseline "
        "every later second is held against, and a cluster that does not meet the budget in it is refused.")
    abort_on_breach: bool = Field(
        default=False, description="Undo the fault as soon as the budget is broken, and end the demo Failed "
        "(BudgetExceeded). Otherwise the demo runs on, and a breach fails it after recovery.")
    budget: CanaryBudget = Field(default_factory=CanaryBudget, description="What the users may feel.")
    credentials_secret: str = Field(
        default="", max_length=253, pattern=r"^(" + DNS_SUBDOMAIN[1:-1] + r")?$",
        description="A Secret in the TidbCluster's namespace with the canary's user (root when absent) and "
        "password. Empty: root with no password, tidb-operator's default. The creator must be allowed to get it "
        "(the admission policy checks), and the operator reads only Secrets the chart's "
        "canary.credentialSecrets names.")


_SPEC_RULES = _cel(
    (
        "self.fault.action != 'node-kill' || !has(self.fault.nodeDownSeconds) "
        "|| self.fault.nodeDownSeconds < self.timeouts.recoverySeconds",
        "fault.nodeDownSeconds must be less than timeouts.recoverySeconds: "
        "the node has to come back before the recovery deadline",
    ),
    (
        "!has(self.fault.durationSeconds) || self.fault.durationSeconds < self.timeouts.recoverySeconds",
        "fault.durationSeconds must be less than timeouts.recoverySeconds: "
        "the fault has to be undone before the recovery deadline",
    ),
    (
        "!has(self.target.role) || self.target.role != 'pd-leader' || self.fault.action in "
        + "[" + ", ".join(f"'{a}'" for a in PD_LEADER_ACTIONS) + "]",
        "target.role pd-leader hits one PD pod or its process: fault.action must be one of "
        + ", ".join(PD_LEADER_ACTIONS),
    ),
)


class ChaosDemoSpec(_Model):
    """What the user asks for: one fault against one TidbCluster, measured and explained."""

    model_config = ConfigDict(json_schema_extra=_SPEC_RULES)

    cluster: ClusterRef = Field(description="The TidbCluster to run the demo against.")
    fault: FaultSpec = Field(
        default_factory=FaultSpec, description="The fault to inject into one TiKV store."
    )
    target: TargetSpec = Field(
        default_factory=TargetSpec, description="Which pod receives the fault: a TiKV, or PD's leader."
    )
    timeouts: TimeoutsSpec = Field(
        default_factory=TimeoutsSpec, description="Deadlines for detection and recovery."
    )
    diagnosis: DiagnosisSpec = Field(
        default_factory=DiagnosisSpec, description="Root-cause diagnosis of the failure."
    )
    canary: CanarySpec = Field(
        default_factory=CanarySpec, description="What TiDB's clients felt: a SQL canary and its budget."
    )
    dry_run: bool = Field(
        default=False,
        description=(
            "Run the preflight checks and choose the target, then stop without injecting "
            "anything."
        ),
    )


# ---------------------------------------------------------------- status


class Condition(_Model):
    """A condition in the Kubernetes API shape."""

    type: str = Field(description="The stage or summary this condition describes.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase word for programs.")
    message: str = Field(default="", description="A sentence for people.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int = Field(default=0, description="The spec generation it describes.")


class TargetStatus(_Model):
    """The TiKV store, or the PD member (target.role pd-leader), that receives the fault."""

    component: TargetComponent = Field(default="tikv", description="What the pod runs: tikv or pd.")
    pod: str = Field(default="", description="The target pod's name (a TiKV pod, or a PD pod).")
    pod_uid: str = Field(default="", description="UID of the pod when it was chosen.")
    node: str = Field(default="", description="Node that ran the pod when it was chosen.")
    restart_count: int = Field(default=0, description="Container restarts of the pod when it was chosen.")
    store_id: str = Field(default="", description="PD store id of the pod's TiKV (empty for a PD member).")
    pd_member: str = Field(default="", description="The PD member's name, as PD names it (a PD target).")
    store_address: str = Field(default="", description="Store address registered in PD.")
    role: str = Field(default="", description="spec.target.role when the target was chosen by its role.")
    selection: str = Field(default="", description="How the target was chosen (for a role: what PD said).")


class InjectionRecord(_Model):
    """What the operator did, written before the side effect so it is never repeated."""

    action: str = Field(default="", description="The fault action.")
    requested_at: str | None = Field(default=None, description="When injection was decided.")
    detail: str = Field(default="", description="What exactly was done.")
    undone_at: str | None = Field(
        default=None,
        description="When the operator undid the fault, for faults that need it (node-kill: the node was "
        "started again).",
    )


class Violation(_Model):
    """An invariant that broke, and when."""

    invariant: str = Field(description="Name of the invariant.")
    subject: str = Field(default="", description="What broke it (pod, store, region check).")
    message: str = Field(default="", description="What was seen.")
    first_seen: str = Field(description="When it was first seen broken.")
    cleared: str | None = Field(default=None, description="When it held again.")


# What an answer may hold: a model's answer is untrusted input, refused whole when out of these bounds (the
# rules engine then stands in, saying why). Text fields in characters; lists in items, each item's text.
ANSWER_TEXT = {"summary": 500, "root_cause": 2000, "affected_pod": 253, "affected_store": 20, "affected_node": 253}
ANSWER_LISTS = {"evidence": (20, 500), "cited_evidence": (40, 40), "recommended_actions": (10, 500)}


def answer_out_of_bounds(answer: DiagnosisAnswer) -> list[str]:
    """What in an answer is out of bounds (``ANSWER_TEXT``, ``ANSWER_LISTS``, a confidence from 0 to 1)."""
    problems = [f"{name} is {len(getattr(answer, name))} characters (at most {limit})"
                for name, limit in ANSWER_TEXT.items() if len(getattr(answer, name)) > limit]
    for name, (items, chars) in ANSWER_LISTS.items():
        values: list[str] = getattr(answer, name)
        if len(values) > items:
            problems.append(f"{name} has {len(values)} items (at most {items})")
        problems += [f"{name}[{i}] is {len(v)} characters (at most {chars})" for i, v in enumerate(values)
                     if len(v) > chars][:3]
    if not 0.0 <= answer.confidence <= 1.0:  # NaN too
        problems.append(f"confidence is {answer.confidence} (from 0 to 1)")
    return problems


class DiagnosisAnswer(BaseModel):
    """The structured answer a diagnosis engine gives, Claude's or the rules engine's.

    Claude is asked for exactly this shape through the SDK's structured output
    (``messages.parse(output_format=DiagnosisAnswer)``), so extra keys are refused. The bounds are said
    in each field's description (the model reads them) and checked after: an answer out of them is
    refused whole (``answer_out_of_bounds``).
    """

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="One sentence: what failed (at most 500 characters).")
    root_cause: str = Field(description="The root cause, as specific as the evidence allows (at most 2000 "
                            "characters).")
    fault_class: FaultClass = Field(description="The class of fault.")
    affected_pod: str = Field(description="Name of the affected TiKV pod, or empty.")
    affected_store: str = Field(description="PD store id of the affected store, or empty.")
    affected_node: str = Field(description="Name of the affected node, or empty.")
    confidence: float = Field(description="Confidence from 0 to 1.")
    evidence: list[str] = Field(description="The observations this diagnosis rests on (at most 20, each at most "
                                "500 characters).")
    cited_evidence: list[str] = Field(
        description="The refs (each evidence item's ref field) of the items this diagnosis rests on (at most 40).")
    recommended_actions: list[str] = Field(description="Concrete next steps for an operator (at most 10, each at "
                                           "most 500 characters).")

    @model_validator(mode="after")
    def _within_bounds(self) -> DiagnosisAnswer:
        # An engine's answer only: a Diagnosis is made from one (bounded and clipped) and read back from status.
        if type(self) is DiagnosisAnswer and (problems := answer_out_of_bounds(self)):
            raise ValueError("answer out of bounds: " + "; ".join(problems))
        return self


class Diagnosis(DiagnosisAnswer):
    """A root-cause diagnosis (the engine's answer), who gave it, and how it compares with what was injected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    engine: Literal["claude", "rules"] = Field(description="Who diagnosed: claude or rules.")
    model: str = Field(default="", description="Claude model id, when engine is claude.")
    fallback_reason: str = Field(
        default="", description="Why the rules engine answered instead of Claude."
    )
    confidence: float = Field(description="Confidence from 0 to 1.", ge=0, le=1)
    matches_injected_fault: bool = Field(
        default=False, description="Whether class and pod agree with what was injected."
    )
    grading: str = Field(default="", description="How the diagnosis compares with the truth.")
    cited_evidence: list[str] = Field(
        default_factory=list, description="The refs of the evidence items the diagnosis cites (at most 20).")
    unknown_citations: list[str] = Field(
        default_factory=list, description="Cited refs that are not in the evidence the engine was given: such a "
        "diagnosis is not trusted, and matchesInjectedFault is false.")


Observer = Literal["kubernetes", "pd", "tidb-operator", "chaosdemo", "tidb-clients"]


class ObserverSight(_Model):
    """When one observer first showed the fault, and its end, as the operator read it (never estimated)."""

    observer: Observer = Field(description="kubernetes (pods, nodes), pd (its store states), tidb-operator "
                               "(the TidbCluster's status), chaosdemo (this operator's detection) or tidb-clients "
                               "(the SQL canary's first failed or timed-out statement, and its last).")
    saw_fault_at: str | None = Field(default=None, description="When it first showed the fault.")
    saw_fault_seconds: float | None = Field(default=None, description="Seconds after the injection.")
    what: str = Field(default="", max_length=200, description="What it showed first, or that it never did.")
    down_at: str | None = Field(default=None, description="pd only: when it first called the store Down.")
    saw_end_at: str | None = Field(default=None, description="When it first showed the fault over.")
    saw_end_seconds: float | None = Field(default=None, description="Seconds after the injection.")


class RowsOutcome(_Model):
    """Canary statements on some of the rows after the injection."""

    ok: int = Field(default=0, description="Statements that succeeded.")
    failed: int = Field(default=0, description="Statements that failed or timed out.")
    slowest_seconds: float | None = Field(default=None, description="The longest statement on them, a "
                                          "timed-out one counting its statementTimeoutSeconds.")


class RowRange(_Model):
    """Rows ``first`` up to ``end`` (not included) of the canary's table."""

    first: int = Field(ge=0, le=1024, description="The first row.")
    end: int = Field(ge=0, le=1024, description="The row after the last.")


class ImpactStatus(_Model):
    """What TiDB's clients felt, measured by the SQL canary (seconds are after the injection)."""

    baseline_throughput: float | None = Field(default=None, description="Successful statements a second before "
                                              "the injection (the median second).")
    baseline_p99_seconds: float | None = Field(default=None, description="p99 latency before the injection.")
    lowest_throughput_share: float | None = Field(default=None, description="The worst 10 s after the "
                                                  "injection, as a share of the baseline throughput.")
    worst_p99_seconds: float | None = Field(default=None, description="The worst second's p99 latency.")
    slowest_statement_seconds: float | None = Field(default=None, description="The longest single statement.")
    statements: int = Field(default=0, description="Statements finished after the injection.")
    failures: dict[str, int] = Field(default_factory=dict, description="Failed statements by MySQL error code, "
                                     "timeout for those the canary gave up on (at most 17 codes, then other).")
    longest_unavailable_seconds: float | None = Field(default=None, description="The longest stretch with no "
                                                      "successful statement, to 0.1 s.")
    unavailable_from: str | None = Field(default=None, description="When that stretch began.")
    served_again_at: str | None = Field(default=None, description="When users were served again: throughput and "
                                        "the longest statement back within the budget, held for the stability "
                                        "window. Empty when they never stopped being served.")
    served_again_seconds: float | None = Field(default=None, description="Seconds after the injection.")
    affected_rows_share: float | None = Field(default=None, description="The share of the canary's rows whose "
                                              "leader was on the broken store at the injection.")
    affected_ranges: list[RowRange] | None = Field(
        default=None, max_length=64, description="The canary's rows whose leader was on the broken store at the "
        "injection, kept so an operator that restarts mid-demo judges the same rows.")
    affected_rows: RowsOutcome | None = Field(default=None, description="Statements on those rows.")
    other_rows: RowsOutcome | None = Field(default=None, description="Statements on every other row.")
    bank_total_held: bool | None = Field(default=None, description="Whether every read of the bank's total "
                                         "found what the canary wrote; empty if it could never be read.")
    budget_breaches: list[str] = Field(default_factory=list, max_length=8, description="What broke the budget.")
    note: str = Field(default="", max_length=300, description="What limits these numbers (the canary "
                      "restarted with the operator, for one).")


class ChaosDemoStatus(_Model):
    """What happened. The phase is computed from the conditions; the conditions are the record."""

    phase: Phase = Field(default="Pending", description="Summary of the conditions, for display.")
    message: str = Field(default="", description="What is happening now, for people.")
    observed_generation: int = Field(default=0, description="The spec generation handled.")
    conditions: list[Condition] = Field(default_factory=list, description="Stage conditions.")
    target: TargetStatus | None = Field(default=None, description="The TiKV store hit.")
    injection: InjectionRecord | None = Field(default=None, description="The injection record.")
    started_at: str | None = Field(default=None, description="When the operator took it up.")
    injected_at: str | None = Field(default=None, description="When the fault was injected.")
    detected_at: str | None = Field(default=None, description="When the failure was detected.")
    diagnosed_at: str | None = Field(default=None, description="When the diagnosis was ready.")
    recovered_at: str | None = Field(default=None, description="When the cluster recovered.")
    finished_at: str | None = Field(default=None, description="When the demo ended.")
    detection_seconds: float | None = Field(
        default=None, description="Seconds from injection to detection."
    )
    recovery_seconds: float | None = Field(
        default=None,
        description="Seconds from injection until every invariant held again (before the "
        "stability window).",
    )
    detected_by: str = Field(default="", description="The invariant that detected first.")
    violations: list[Violation] = Field(
        default_factory=list, description="Invariants that broke (bounded)."
    )
    violations_dropped: int = Field(
        default=0, description="Violations left out of the list to keep status bounded."
    )
    diagnosis: Diagnosis | None = Field(default=None, description="Root-cause diagnosis.")
    impact: ImpactStatus | None = Field(default=None, description="What TiDB's clients felt (spec.canary).")
    observers: list[ObserverSight] = Field(
        default_factory=list, max_length=5, description="Who saw the fault when: Kubernetes, PD, tidb-operator, "
        "this operator and (with spec.canary) TiDB's clients, each from its own first sight after the injection "
        "to its first sight of the end.")

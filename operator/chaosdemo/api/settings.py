"""Operator configuration, typed and read from the environment (prefix CHAOSDEMO_).

The Anthropic API key is read from ANTHROPIC_API_KEY (set from a Secret in the
Deployment) and kept as a SecretStr so it never reaches status, events or logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, SecretStr, field_validator

__all__ = ["POINTS", "Settings"]

POINTS = (  # crash points (run/crashpoints.py): named steps of a run where a test can have the operator SIGKILLed
    "after-lease",  # the cluster's Lease is held, no target chosen yet
    "before-inject",  # the intent to inject is in status, the fault call not made
    "after-inject",  # the fault call returned, its result not yet in status
    "Detecting",  # the first status write in that phase
    "Diagnosing",
    "Recovering",
)

_PREFIX = "CHAOSDEMO_"


class Settings(BaseModel):
    claude_model: str = Field(default="claude-sonnet-5-5", description="Default Claude model.")
    anthropic_api_key: SecretStr | None = Field(default=None, description="From ANTHROPIC_API_KEY.")
    anthropic_base_url: str | None = Field(default=None, description="From ANTHROPIC_BASE_URL.")
    claude_timeout_seconds: float = Field(default=60.0, gt=0)
    claude_max_retries: int = Field(default=2, ge=0)
    claude_max_tokens: int = Field(default=2048, ge=256)
    diagnosis_settle_seconds: float = Field(
        default=10.0, ge=0, description="Evidence gathered after detection before diagnosing."
    )
    pd_url_template: str = Field(
        default="http://{name}-pd.{namespace}.svc.{domain}.:2379",
        description="PD URL when spec.cluster.pdURL is empty; {name}, {namespace} and {domain} (the cluster "
        "domain) are filled in. The default is fully qualified (the trailing dot), so no DNS search "
        "domain is tried first.",
    )
    tidb_address_template: str = Field(
        default="{name}-tidb.{namespace}.svc.{domain}.:4000",
        description="TiDB's MySQL address (host:port) for the SQL canary (spec.canary); {name}, {namespace} and "
        "{domain} are filled in. The default is the TiDB Service tidb-operator creates, fully qualified.",
    )
    cluster_domain: str = Field(
        default="cluster.local", max_length=200,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        description="The Kubernetes cluster's DNS domain (the kubelet's --cluster-domain); PD Service names "
        "are qualified with it.")
    pd_timeout_seconds: float = Field(default=3.0, gt=0)
    pd_max_body_bytes: int = Field(
        default=8 * 2**20, ge=2**16, le=2**30,
        description="The largest PD answer read; a longer one is PD unavailable, with the limit named.")
    poll_seconds: float = Field(
        default=2.0, gt=0, description="Longest wait between two looks at the cluster."
    )
    look_interval_seconds: float = Field(
        default=0.25, ge=0,
        description="Once the failure is detected, at most one look per this many seconds: a burst of pod "
        "events (a pod deleted, recreated, scheduled, started) costs a few looks, not one each. Every event "
        "is still read, from the watch journal, at the next look.",
    )
    save_interval_seconds: float = Field(
        default=1.0, ge=0,
        description="Once the failure is detected, the watch's progress (message, violations opening and "
        "closing) is written to status at most once per this many seconds; detection, each undo and the "
        "end are written at once.",
    )
    detect_poll_seconds: float = Field(
        default=0.5, gt=0, description="Until the failure is detected, the longest wait between two looks: a "
        "stopped store is seen within this plus store_probe_timeout_seconds, a missed heartbeat within this "
        "after heartbeat_stale_seconds.")
    heartbeat_stale_seconds: float = Field(
        default=11.0, gt=0, description="A store whose last heartbeat PD received longer ago than this breaks "
        "pd-store-heartbeats-fresh: TiKV heartbeats every 10 s, so this is one heartbeat missed (1 s for "
        "jitter), 9 s before PD calls the store Disconnected. Read against this operator's clock, so the "
        "nodes' clocks must agree within a fraction of the margin (NTP does).")
    store_probe: bool = Field(
        default=True, description="Ask each TiKV store on its own status port (pod IP, store_status_port) at "
        "every look: the tikv-stores-answer invariant, which sees a stopped TiKV that Kubernetes calls Ready. "
        "Off only where the stores have no process to ask (the local tier's SIMULATED stores).")
    store_status_port: int = Field(default=20180, ge=1, le=65535, description="TiKV's status port.")
    store_probe_timeout_seconds: float = Field(
        default=0.5, gt=0, le=10, description="How long a store may take to answer GET /status (it takes "
        "about 1 ms when healthy).")
    docker_host: str | None = Field(default=None, description="From DOCKER_HOST.")
    node_name: str = Field(default="", max_length=253,
                           description="The node this operator runs on (the chart sets it from spec.nodeName); "
                           "node-kill never kills it.")
    events_limit: int = Field(default=40, ge=0)
    record_evidence: bool = Field(
        default=False, description="Log each diagnosis's evidence and ground truth (and a dry run's healthy "
        "cluster) as one JSON line, for the diagnosis benchmark's corpus (run/casebook.py).")
    stuck_seconds: float = Field(
        default=300.0, gt=0, description="A demo being deleted this long after it was asked, or not taken up this "
        "long after it was created, is reported as stuck (a Warning Event on it, chaosdemo_demos_stuck).")
    undo_check_seconds: float = Field(
        default=30.0, gt=0, description="How often the leader looks for a fault whose demo is gone and undoes it "
        "(also at once when it starts leading).")
    allowed_models: frozenset[str] = Field(
        default=frozenset(),
        description="The Claude models a ChaosDemo may ask for in spec.diagnosis.model (comma-separated), besides "
        "claude_model: each diagnosis costs what its model costs, and the administrator pays. A demo naming "
        "another is Aborted (ModelNotAllowed) before anything is touched.",
    )
    target_namespaces: frozenset[str] = Field(
        default=frozenset(),
        description="Namespaces whose TidbClusters a ChaosDemo of another namespace may target (comma-separated; "
        "'*' for any). A demo may always target its own namespace. Checked again by the operator before "
        "anything is injected, so a cluster without the admission policy still refuses cross-namespace demos.",
    )

    leader_election: bool = Field(
        default=True,
        description="Replicas elect one leader through the Lease chaosdemo-operator; only it runs demos.",
    )
    leader_namespace: str = Field(
        default="", description="Namespace of the leader Lease (default: POD_NAMESPACE, else 'default')."
    )
    leader_lease_seconds: float = Field(
        default=15.0, ge=3, description="How long a silent leader is waited for before a replica takes over."
    )
    metrics_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of the Prometheus metrics endpoint; 0 turns it off."
    )
    crash_at: str | None = Field(
        default=None,
        description="Testing only: the operator SIGKILLs itself when it reaches this crash point (one of "
        "POINTS). Used by the fault matrix to kill the operator at an exact step of a demo.",
    )

    @field_validator("crash_at")
    @classmethod
    def _known_point(cls, v: str | None) -> str | None:
        if v is not None and v not in POINTS:
            raise ValueError(f"unknown crash point {v!r}; one of {', '.join(POINTS)}")
        return v

    @field_validator("target_namespaces", "allowed_models", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        if isinstance(v, str):
            return frozenset(n.strip() for n in v.split(",") if n.strip())
        return v

    def may_use(self, model: str) -> bool:
        """Whether a demo may ask for ``model`` ("" is the operator's default)."""
        return not model or model == self.claude_model or model in self.allowed_models

    def may_target(self, demo_namespace: str, cluster_namespace: str) -> bool:
        return (cluster_namespace == demo_namespace or "*" in self.target_namespaces
                or cluster_namespace in self.target_namespaces)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for name in cls.model_fields:
            key = _PREFIX + name.upper()
            if key in env and env[key] != "":
                values[name] = env[key]
        if env.get("ANTHROPIC_API_KEY"):
            values["anthropic_api_key"] = env["ANTHROPIC_API_KEY"]
        if env.get("ANTHROPIC_BASE_URL"):
            values["anthropic_base_url"] = env["ANTHROPIC_BASE_URL"]
        if env.get("DOCKER_HOST"):
            values["docker_host"] = env["DOCKER_HOST"]
        if not values.get("leader_namespace"):
            values["leader_namespace"] = env.get("POD_NAMESPACE") or "default"
        return cls.model_validate(values)

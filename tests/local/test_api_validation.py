"""The API server itself refuses a bad ChaosDemo, with a message that says what is wrong.

These run against the local tier's real kube-apiserver with the generated CRD;
no operator is involved: a bad spec never reaches it.
"""

from __future__ import annotations

import pytest
import yaml

from chaosdemo_local.cluster.env import LocalEnv

pytestmark = pytest.mark.local


def create(env: LocalEnv, spec: object, name: str = "bad") -> tuple[int, str]:
    obj = {"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
           "metadata": {"name": name, "namespace": "default"}, "spec": spec}
    out = env.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(obj), check=False)
    return out.returncode, out.stderr


OK = {"cluster": {"name": "basic"}}

INVALID = [
    ("no spec at all", None, "spec: Required value"),
    ("no cluster", {}, "spec.cluster: Required value"),
    ("no cluster name", {"cluster": {}}, "spec.cluster.name: Required value"),
    ("empty cluster name", {"cluster": {"name": ""}}, "spec.cluster.name: Invalid value"),
    ("cluster name not a DNS label", {"cluster": {"name": "Basic_Cluster"}}, "spec.cluster.name: Invalid value"),
    ("cluster namespace not a DNS label", {"cluster": {"name": "basic", "namespace": "TiDB"}},
     "spec.cluster.namespace: Invalid value"),
    ("pdURL not http", {"cluster": {"name": "basic", "pdURL": "ftp://pd:2379"}}, "spec.cluster.pdURL: Invalid value"),
    # Issue 20, finding 8: what the operator refuses at run time is refused at admission (seen to pass before).
    ("pdURL of the API server", {"cluster": {"name": "basic", "namespace": "tidb-cluster",
                                             "pdURL": "http://kubernetes.default.svc:443"}},
     "pdURL must name a Service"),
    ("pdURL of a metadata server", {"cluster": {"name": "basic", "pdURL": "http://metadata.google.internal:80"}},
     "pdURL must name a Service of the target namespace"),
    ("pdURL of an IP address", {"cluster": {"name": "basic", "pdURL": "http://10.0.0.1:2379"}},
     "pdURL must name a Service of the target namespace"),
    ("pdURL of another namespace", {"cluster": {"name": "basic", "namespace": "tidb-cluster",
                                                "pdURL": "http://basic-pd.other.svc:2379"}}, "pdURL must name"),
    ("a 300-character pod name", {**OK, "target": {"pod": "a" * 300}}, "spec.target.pod: Too long"),
    ("unknown action", {**OK, "fault": {"action": "pod-explode"}},
     'spec.fault.action: Unsupported value: "pod-explode"'),
    ("negative grace period", {**OK, "fault": {"action": "pod-delete", "gracePeriodSeconds": -1}},
     "spec.fault.gracePeriodSeconds: Invalid value: -1"),
    ("grace period on pod-kill", {**OK, "fault": {"action": "pod-kill", "gracePeriodSeconds": 5}},
     "gracePeriodSeconds applies only to action pod-delete"),
    ("nodeDownSeconds on pod-delete", {**OK, "fault": {"action": "pod-delete", "nodeDownSeconds": 10}},
     "nodeDownSeconds applies only to action node-kill"),
    ("nodeDownSeconds zero", {**OK, "fault": {"action": "node-kill", "nodeDownSeconds": 0}},
     "spec.fault.nodeDownSeconds: Invalid value: 0"),
    ("node down longer than recovery", {**OK, "fault": {"action": "node-kill", "nodeDownSeconds": 700}},
     "fault.nodeDownSeconds must be less than timeouts.recoverySeconds"),
    ("durationSeconds on node-kill", {**OK, "fault": {"action": "node-kill", "durationSeconds": 10}},
     "durationSeconds applies only to actions process-pause and network-partition"),
    ("partitionScope on process-pause", {**OK, "fault": {"action": "process-pause", "partitionScope": "pd"}},
     "partitionScope applies only to action network-partition"),
    ("a canary rate past its bound", {**OK, "canary": {"ratePerSecond": 1000}},
     "spec.canary.ratePerSecond: Invalid value: 1000"),
    ("an unknown partition scope", {**OK, "fault": {"action": "network-partition", "partitionScope": "everyone"}},
     "spec.fault.partitionScope: Unsupported value"),
    ("a pause longer than recovery", {**OK, "fault": {"action": "process-pause", "durationSeconds": 700}},
     "fault.durationSeconds must be less than timeouts.recoverySeconds"),
    ("a zero pause", {**OK, "fault": {"action": "process-pause", "durationSeconds": 0}},
     "spec.fault.durationSeconds: Invalid value: 0"),
    ("pod and seed together", {**OK, "target": {"pod": "basic-tikv-0", "seed": 3}},
     "set either pod (a named target) or seed"),
    ("target pod not a DNS name", {**OK, "target": {"pod": "TiKV 0"}}, "spec.target.pod: Invalid value"),
    ("negative seed", {**OK, "target": {"seed": -4}}, "spec.target.seed: Invalid value: -4"),
    ("role and seed together", {**OK, "target": {"role": "most-leaders", "seed": 3}},
     "role chooses the target from PD's live view"),
    ("unknown role", {**OK, "target": {"role": "pd-follower"}}, "spec.target.role: Unsupported value"),
    ("detection too short", {**OK, "timeouts": {"detectionSeconds": 1}},
     "spec.timeouts.detectionSeconds: Invalid value: 1"),
    ("recovery shorter than detection", {**OK, "timeouts": {"detectionSeconds": 300, "recoverySeconds": 100}},
     "recoverySeconds must be at least detectionSeconds"),
    ("stability too long", {**OK, "timeouts": {"stabilitySeconds": 601}},
     "spec.timeouts.stabilitySeconds: Invalid value: 601"),
    ("model with spaces", {**OK, "diagnosis": {"model": "claude sonnet"}}, "spec.diagnosis.model: Invalid value"),
    ("dryRun not a boolean", {**OK, "dryRun": "yes"}, 'spec.dryRun: Invalid value: "string"'),
]


@pytest.mark.parametrize(("case", "spec", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_an_invalid_spec_is_refused_with_a_clear_message(local_env: LocalEnv, case: str, spec: object,
                                                         message: str) -> None:
    code, err = create(local_env, spec)
    assert code != 0, f"{case} was accepted"
    assert message in err, err


@pytest.mark.parametrize("cluster", [
    {"name": "basic", "pdURL": "http://basic-pd:2379"},
    {"name": "basic", "namespace": "tidb-cluster", "pdURL": "http://basic-pd.tidb-cluster.svc:2379"},
    {"name": "basic", "namespace": "tidb-cluster", "pdURL": "https://basic-pd.tidb-cluster:2379/"},
    {"name": "basic", "namespace": "tidb-cluster", "pdURL": ""},
], ids=["bare", "qualified", "https-short", "empty"])
def test_a_pd_url_of_the_target_namespace_is_accepted(local_env: LocalEnv, cluster: dict[str, str]) -> None:
    code, err = create(local_env, {"cluster": cluster})
    assert code == 0, err


def test_every_string_of_the_spec_has_a_length_limit() -> None:
    from chaosdemo.api.crd import build_crd

    def strings(node: object, path: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        found = [path] if node.get("type") == "string" and "maxLength" not in node and "enum" not in node else []
        for key, child in (node.get("properties") or {}).items():
            found += strings(child, f"{path}.{key}")
        return found

    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert strings(schema, "spec") == []


def test_a_minimal_spec_is_accepted_and_defaulted(local_env: LocalEnv) -> None:
    obj = {"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
           "metadata": {"name": "minimal", "namespace": "default"}, "spec": OK}
    out = local_env.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=yaml.safe_dump(obj))
    spec = yaml.safe_load(out.stdout)["spec"]
    assert spec["fault"] == {"action": "pod-delete"}
    assert spec["timeouts"] == {"detectionSeconds": 120, "recoverySeconds": 600, "stabilitySeconds": 10}
    assert spec["diagnosis"] == {"enabled": True, "model": ""} and spec["dryRun"] is False
    assert spec["canary"]["enabled"] is True and spec["canary"]["ratePerSecond"] == 20, "the canary runs by default"
    assert spec["canary"]["credentialsSecret"] == "", "root with no password, tidb-operator's default"
    assert spec["canary"]["budget"] == {"maxUnavailableSeconds": 20, "minThroughputShare": 0.5,
                                        "maxStatementSeconds": 2, "serveAgainSeconds": 120}


def test_kubectl_explain_teaches_every_spec_field(local_env: LocalEnv) -> None:
    out = local_env.kubectl("explain", "chaosdemo.spec", "--recursive").stdout
    for field in ("cluster", "pdURL", "fault", "action", "gracePeriodSeconds", "nodeDownSeconds", "durationSeconds",
                  "partitionScope", "target", "seed",
                  "timeouts", "detectionSeconds", "recoverySeconds", "stabilitySeconds", "diagnosis", "model",
                  "dryRun", "canary", "ratePerSecond", "abortOnBreach", "budget", "maxUnavailableSeconds",
                  "minThroughputShare", "maxStatementSeconds", "serveAgainSeconds", "credentialsSecret"):
        assert field in out, field
    action = local_env.kubectl("explain", "chaosdemo.spec.fault.action").stdout
    assert "StatefulSet recreates it" in action and "pod-delete" in action
    share = local_env.kubectl("explain", "chaosdemo.spec.canary.budget.minThroughputShare").stdout
    assert "PingCAP's QA" in share
    bound = local_env.kubectl("explain", "chaosdemo.spec.canary.budget.maxStatementSeconds").stdout
    assert "did not lead" in bound and "election" in bound, bound
    assert "cdemo" in local_env.kubectl("api-resources", "--api-group=chaosdemo.dev").stdout

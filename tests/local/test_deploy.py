"""The kind path, checked as far as this machine allows: every manifest, sample and the
rendered chart against the local tier's real API server (server-side dry run), and the
operator running under its own ServiceAccount and RBAC."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from chaosdemo_local.cluster.control_plane import free_port
from chaosdemo_local.cluster.env import LocalEnv

from .conftest import REPO, Demos, Operator

pytestmark = pytest.mark.local
SA = "system:serviceaccount:chaosdemo-system:chaosdemo-operator"
CHART = REPO / "charts" / "chaosdemo-operator"


@pytest.fixture(scope="module")
def installed(local_env: LocalEnv) -> LocalEnv:
    for f in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        local_env.kubectl("apply", "-f", str(REPO / "deploy" / f))
    return local_env


@pytest.fixture(scope="module")
def helm() -> str:
    out = subprocess.run(["bash", str(REPO / "hack" / "build-helm.sh")], capture_output=True, text=True, check=False)
    path = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else ""
    if not path or not Path(path).exists():
        pytest.skip(f"helm could not be built from the Go module proxy: {out.stderr.strip()[-300:]}")
    return path


def dry_run(env: LocalEnv, text: str) -> subprocess.CompletedProcess[str]:
    return env.kubectl("apply", "--dry-run=server", "-f", "-", input=text, check=False)


@pytest.mark.parametrize("manifest", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "deploy").rglob("*.yaml")))
def test_every_manifest_and_sample_passes_a_server_side_dry_run(installed: LocalEnv, manifest: str) -> None:
    if manifest.startswith("deploy/samples/"):
        installed.kubectl("create", "namespace", "tidb-cluster", check=False)
    out = dry_run(installed, (REPO / manifest).read_text())
    assert out.returncode == 0, out.stderr
    assert "(server dry run)" in out.stdout


def test_the_rendered_chart_passes_a_server_side_dry_run_with_and_without_the_docker_socket(
        installed: LocalEnv, helm: str) -> None:
    for extra in ([], ["--set", "dockerSocket.enabled=true", "--set", "dockerSocket.groupId=999"]):
        rendered = subprocess.run([helm, "template", "chaosdemo", str(CHART), "-n", "chaosdemo-system",
                                   "--kube-version", "1.36.3", "--include-crds", *extra],
                                  capture_output=True, text=True, check=True).stdout
        kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
        assert sorted(kinds) == sorted(["CustomResourceDefinition", "ServiceAccount", "ClusterRole",
                                        "ClusterRoleBinding", "Service", "Deployment", "ValidatingAdmissionPolicy",
                                        "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy",
                                        "ValidatingAdmissionPolicyBinding"])
        out = dry_run(installed, rendered)
        assert out.returncode == 0, out.stderr
        socket = "/var/run/docker.sock" in rendered
        assert socket == bool(extra), "the Docker socket is mounted only when dockerSocket.enabled is true"


def test_the_chart_runs_replicas_with_leader_election_and_a_service_monitor_on_request(helm: str) -> None:
    rendered = subprocess.run([helm, "template", "chaosdemo", str(CHART), "-n", "chaosdemo-system",
                               "--kube-version", "1.36.3", "--set", "replicas=2",
                               "--set", "metrics.serviceMonitor.enabled=true"],
                              capture_output=True, text=True, check=True).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    deployment = docs["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["CHAOSDEMO_METRICS_PORT"]["value"] == "8081"
    monitor, service = docs["ServiceMonitor"], docs["Service"]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    off = subprocess.run([helm, "template", "chaosdemo", str(CHART), "--kube-version", "1.36.3",
                          "--set", "metrics.port=0"], capture_output=True, text=True, check=True).stdout
    assert "kind: Service\n" not in off and "CHAOSDEMO_METRICS_PORT" in off


def test_helm_lint_is_clean_and_the_values_schema_refuses_bad_values(helm: str) -> None:
    lint = subprocess.run([helm, "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    bad = subprocess.run([helm, "template", "x", str(CHART), "--kube-version", "1.36.3",
                          "--set", "dockerSocket.enabled=maybe"], capture_output=True, text=True)
    assert bad.returncode != 0 and "dockerSocket" in bad.stderr


def test_the_operator_runs_a_demo_under_its_own_service_account(installed: LocalEnv, operator: Operator,
                                                                demos: Demos, tmp_path: Path) -> None:
    token = installed.kubectl("create", "token", "chaosdemo-operator", "-n", "chaosdemo-system",
                              "--duration=1h").stdout.strip()
    cfg = json.loads(installed.kubeconfig.read_text())
    cfg["users"] = [{"name": "admin", "user": {"token": token}}]
    kubeconfig = tmp_path / "sa-kubeconfig"
    kubeconfig.write_text(json.dumps(cfg))
    assert base64.b64decode(token.split(".")[1] + "==").decode().count("chaosdemo-operator") >= 1
    port = free_port()
    proc = operator.start(args=("--liveness", f"http://127.0.0.1:{port}/healthz"), verbose=True,
                          KUBECONFIG=str(kubeconfig))
    deadline = time.monotonic() + 15  # kopf opens its probe server just after the startup handlers
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                assert resp.status == 200, "the probe the Deployment uses answers"
                break
        except urllib.error.URLError:
            assert time.monotonic() < deadline, "the liveness endpoint never answered"
            time.sleep(0.2)
    # Under the admission policy too: only a holder of write-status (the operator) writes status.
    installed.kubectl("apply", "-f", str(REPO / "deploy" / "admission-policy.yaml"))
    status_policy_in_force(installed, demos)
    try:
        demos.apply("as-sa", target={"pod": "basic-tikv-0"})
        st = demos.wait("as-sa")["status"]
    finally:
        installed.kubectl("delete", "-f", str(REPO / "deploy" / "admission-policy.yaml"), check=False)
    assert st["phase"] == "Succeeded", st.get("message")
    denied = re.findall(r'"code":\s*403|APIForbiddenError|is forbidden', proc.output())
    assert denied == [], "RBAC is sufficient: no request was refused"


def status_policy_in_force(env: LocalEnv, demos: Demos, timeout: float = 30) -> None:
    """Wait until the API server refuses a status write by a user who may patch status but lacks write-status."""
    rules = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
              "metadata": {"name": "status-prober", "namespace": demos.ns},
              "rules": [{"apiGroups": ["chaosdemo.dev"], "resources": ["chaosdemos/status"],
                         "verbs": ["get", "patch"]}]},
             {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": "status-prober", "namespace": demos.ns},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "status-prober"},
              "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "status-prober"}]}]
    env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rules))
    demos.apply("probe", dryRun=True)
    deadline = time.monotonic() + timeout
    while True:
        out = env.kubectl("patch", "chaosdemo", "probe", "-n", demos.ns, "--as", "status-prober", "--dry-run=server",
                          "--subresource=status", "--type=merge", "-p", '{"status": {"message": "x"}}', check=False)
        if "chaosdemo-status-is-the-operators" in out.stderr:
            return
        assert time.monotonic() < deadline, f"the status policy is not in force: {out.stderr.strip()}"
        time.sleep(0.2)


ALLOWED = [
    ("watch", "chaosdemos.chaosdemo.dev"), ("patch", "chaosdemos.chaosdemo.dev"),
    ("patch", "chaosdemos.chaosdemo.dev/status"), ("write-status", "chaosdemos.chaosdemo.dev"),
    ("get", "tidbclusters.pingcap.com"),
    ("delete", "pods"), ("watch", "pods"), ("watch", "statefulsets.apps"), ("get", "nodes"),
    ("create", "events"), ("list", "events"), ("create", "leases.coordination.k8s.io"),
    ("delete", "leases.coordination.k8s.io"), ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
]
DENIED = [
    ("get", "secrets"), ("create", "pods"), ("patch", "pods"), ("delete", "statefulsets.apps"),
    ("patch", "statefulsets.apps"), ("patch", "tidbclusters.pingcap.com"), ("delete", "tidbclusters.pingcap.com"),
    ("delete", "nodes"), ("patch", "nodes"), ("create", "chaosdemos.chaosdemo.dev"),
    ("delete", "chaosdemos.chaosdemo.dev"), ("create", "pods/exec"), ("create", "pods/eviction"),
    ("list", "leases.coordination.k8s.io"), ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("get", "configmaps"), ("create", "serviceaccounts/token"),
]


@pytest.mark.parametrize(("verb", "resource"), ALLOWED + DENIED, ids=[f"{v}-{r}" for v, r in ALLOWED + DENIED])
def test_rbac_is_minimal(installed: LocalEnv, verb: str, resource: str) -> None:
    out = installed.kubectl("auth", "can-i", verb, resource, "--as", SA, "-n", "tidb-cluster", check=False)
    expected = "yes" if (verb, resource) in ALLOWED else "no"
    assert out.stdout.strip() == expected, f"{verb} {resource}: {out.stdout.strip()} {out.stderr.strip()}"


def test_the_charts_rules_are_the_deploy_rules() -> None:
    deploy = next(d for d in yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text())
                  if d["kind"] == "ClusterRole")
    text = (CHART / "templates" / "clusterrole.yaml").read_text()
    chart_rules = yaml.safe_load(text.split("rules:\n", 1)[1])
    assert chart_rules == deploy["rules"]


def test_every_chart_value_is_commented_with_its_name() -> None:
    """Helm's best practice: each value has a comment that starts with its name."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    missing, parents = [], []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        depth = (len(line) - len(stripped)) // 2
        key = stripped.split(":", 1)[0]
        parents = [*parents[:depth], key]
        if depth > 1 or parents[0] == "resources":
            continue
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#"):
            j -= 1
        first_comment = lines[j + 1].strip() if j + 1 < i else ""
        if not (first_comment.startswith(f"# {'.'.join(parents)}") or first_comment.startswith(f"# {key}")):
            missing.append(".".join(parents))
    assert missing == []

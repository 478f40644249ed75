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
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaosdemo_local.cluster.control_plane import free_port
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator

from .conftest import REPO

pytestmark = pytest.mark.local
SA = "system:serviceaccount:chaosdemo-system:chaosdemo-operator"
CHART = REPO / "charts" / "chaosdemo-operator"


DEPLOYED = ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml")


@pytest.fixture(scope="module")
def installed(local_env: LocalEnv) -> Iterator[LocalEnv]:
    for f in DEPLOYED:
        local_env.kubectl("apply", "-f", str(REPO / "deploy" / f))
    yield local_env
    for f in reversed(DEPLOYED):  # the namespace last: what is in it goes with it
        local_env.kubectl("delete", "-f", str(REPO / "deploy" / f), "--ignore-not-found", "--wait=false", check=False)


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
        assert sorted(kinds) == sorted(["CustomResourceDefinition", "CustomResourceDefinition", "ServiceAccount",
                                        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Role",
                                        "RoleBinding", "Service", "Deployment",
                                        *["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] * 3])
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
    guessed = subprocess.run([helm, "template", "x", str(CHART), "--kube-version", "1.36.3",
                              "--set", "dockerSocket.enabled=true"], capture_output=True, text=True)
    assert guessed.returncode != 0 and "dockerSocket.groupId" in guessed.stderr, "no group is guessed (0 is root's)"


@pytest.fixture
def sa_kubeconfig(installed: LocalEnv, tmp_path: Path) -> Path:
    """A kubeconfig with the operator ServiceAccount's token: the operator runs with its RBAC and nothing more."""
    token = installed.kubectl("create", "token", "chaosdemo-operator", "-n", "chaosdemo-system",
                              "--duration=1h").stdout.strip()
    cfg = json.loads(installed.kubeconfig.read_text())
    cfg["users"] = [{"name": "admin", "user": {"token": token}}]
    kubeconfig = tmp_path / "sa-kubeconfig"
    kubeconfig.write_text(json.dumps(cfg))
    assert base64.b64decode(token.split(".")[1] + "==").decode().count("chaosdemo-operator") >= 1
    return kubeconfig


def test_a_namespace_the_operator_holds_no_role_in_is_refused_with_what_to_do(
        installed: LocalEnv, operator: Operator, demos: Demos, sa_kubeconfig: Path) -> None:
    """Allowed by the operator's list but not granted by RBAC: Aborted at once, saying how to grant it."""
    operator.start(KUBECONFIG=str(sa_kubeconfig), POD_NAMESPACE="chaosdemo-system",
                   CHAOSDEMO_TARGET_NAMESPACES="tidb-cluster,ungranted")
    demos.apply("ungranted", cluster={"name": "basic", "namespace": "ungranted"})
    st = demos.wait("ungranted")["status"]
    assert st["phase"] == "Aborted" and "OperatorNotPermitted" in st["message"], st["message"]
    assert "targetNamespaces" in st["message"] and "HTTP 403" in st["message"], st["message"]


def test_the_operator_runs_a_demo_under_its_own_service_account(installed: LocalEnv, operator: Operator,
                                                                demos: Demos, sa_kubeconfig: Path) -> None:
    kubeconfig = sa_kubeconfig
    port = free_port()
    proc = operator.start(args=("--liveness", f"http://127.0.0.1:{port}/healthz"), verbose=True,
                          KUBECONFIG=str(kubeconfig), POD_NAMESPACE="chaosdemo-system")  # as the chart sets it
    deadline = time.monotonic() + 15  # kopf opens its probe server just after the startup handlers
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                assert resp.status == 200, "the probe the Deployment uses answers"
                break
        except urllib.error.URLError:
            assert time.monotonic() < deadline, "the liveness endpoint never answered"
            time.sleep(0.2)
    # Under the admission policy the local tier installs: only a holder of write-status (the operator) writes status.
    status_policy_in_force(installed, demos)
    demos.apply("as-sa", target={"pod": "basic-tikv-0"})
    st = demos.wait("as-sa")["status"]
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


def render(helm: str, namespace: str, *values: str) -> list[dict]:
    out = subprocess.run([helm, "template", "chaosdemo", str(CHART), "-n", namespace, "--kube-version", "1.36.3",
                          *[a for v in values for a in ("--set", v)]], capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


RBAC = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")

NAMESPACES = ("tidb-cluster", "chaosdemo-system", "kube-system", "kube-node-lease", "tenant")
# (namespace, verb, resource) the operator's ServiceAccount may do, with the chart's defaults; every other
# cell of the matrix below must be refused.
ALLOWED = {
    *[(ns, verb, res) for ns in NAMESPACES for verb, res in [
        ("watch", "chaosdemos.chaosdemo.dev"), ("patch", "chaosdemos.chaosdemo.dev"),
        ("patch", "chaosdemos.chaosdemo.dev/status"), ("write-status", "chaosdemos.chaosdemo.dev"),
        ("watch", "pods"), ("watch", "statefulsets.apps"), ("get", "nodes"),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "events"),  # Events on ChaosDemos, which may live anywhere: watchNamespaces confines it
        # a suite's demos, beside the suite (anywhere: watchNamespaces confines it), and its status
        ("create", "chaosdemos.chaosdemo.dev"), ("delete", "chaosdemos.chaosdemo.dev"),
        ("watch", "chaosdemosuites.chaosdemo.dev"), ("patch", "chaosdemosuites.chaosdemo.dev/status"),
    ]],
    ("tidb-cluster", "node-kill", "chaosdemos.chaosdemo.dev"),  # a suite's node-kill step, as its own demo
    *[("tidb-cluster", verb, res) for verb, res in [
        ("get", "tidbclusters.pingcap.com"), ("delete", "pods"), ("get", "services"), ("list", "events"),
        ("get", "leases.coordination.k8s.io"), ("create", "leases.coordination.k8s.io"),
        ("update", "leases.coordination.k8s.io"), ("delete", "leases.coordination.k8s.io")]],
    *[("chaosdemo-system", verb, "leases.coordination.k8s.io") for verb in ("get", "create", "update", "delete")],
    ("chaosdemo-system", "create", "configmaps"), ("chaosdemo-system", "get", "configmaps/chaosdemo-undo-ledger"),
    ("chaosdemo-system", "update", "configmaps/chaosdemo-undo-ledger"),
}
WRITES = [
    ("delete", "pods"), ("create", "pods"), ("patch", "pods"), ("create", "pods/exec"), ("create", "pods/eviction"),
    ("delete", "statefulsets.apps"), ("patch", "statefulsets.apps"), ("patch", "tidbclusters.pingcap.com"),
    ("delete", "tidbclusters.pingcap.com"), ("delete", "nodes"), ("patch", "nodes"),
    ("create", "chaosdemos.chaosdemo.dev"), ("delete", "chaosdemos.chaosdemo.dev"),
    ("create", "leases.coordination.k8s.io"), ("update", "leases.coordination.k8s.io"),
    ("delete", "leases.coordination.k8s.io"), ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "serviceaccounts/token"), ("create", "services"), ("update", "services"), ("create", "events"),
    ("create", "configmaps"),
]
READS = [("get", "secrets"), ("get", "configmaps"), ("get", "configmaps/kube-root-ca.crt"),
         ("update", "configmaps/kube-proxy"), ("list", "leases.coordination.k8s.io"),
         ("get", "leases.coordination.k8s.io"), ("get", "tidbclusters.pingcap.com"), ("get", "services"),
         ("list", "services"), ("list", "events")]
MATRIX = [(ns, v, r) for ns in NAMESPACES
          for v, r in WRITES + READS + [(v, r) for n, v, r in sorted(ALLOWED) if n == ns]]


def can_i(env: LocalEnv, user: str, verb: str, resource: str, namespace: str) -> bool:
    """``kubectl auth can-i VERB RESOURCE[/NAME] --as USER -n NAMESPACE``, asked as one SubjectAccessReview over
    HTTP: the same authorizer, without a kubectl process per cell (about 260 cells here). The user's groups
    are those impersonation gives a ServiceAccount."""
    kind, _, name = resource.partition("/")
    res, _, group = kind.partition(".")
    sa_ns = user.split(":")[2] if user.startswith("system:serviceaccount:") else ""
    groups = ["system:authenticated", *(["system:serviceaccounts", f"system:serviceaccounts:{sa_ns}"] if sa_ns else [])]
    assert env.cluster is not None
    review = env.cluster.api("/apis/authorization.k8s.io/v1/subjectaccessreviews", "POST", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": {
            "namespace": namespace, "verb": verb, "group": group, "resource": res, "name": name}}})
    return bool(review["status"].get("allowed"))


def test_rbac_is_minimal(installed: LocalEnv) -> None:
    """What the operator may do, namespace by namespace: in kube-system and kube-node-lease it writes nothing
    but Events on ChaosDemos and a suite's demos (and nothing at all once watchNamespaces is set, below). Every
    cell of the matrix, each wrong one named."""
    wrong = [f"{verb} {resource} in {ns}: {'yes' if allowed else 'no'}" for ns, verb, resource in sorted(set(MATRIX))
             if (allowed := can_i(installed, SA, verb, resource, ns)) != ((ns, verb, resource) in ALLOWED)]
    assert len(set(MATRIX)) > 200 and wrong == []


def test_with_watch_namespaces_set_kube_system_and_kube_node_lease_are_untouched(
        installed: LocalEnv, helm: str) -> None:
    """The chart rendered with watchNamespaces, applied to the API server, and asked namespace by namespace."""
    ns, sa = "chaosdemo-confined", "system:serviceaccount:chaosdemo-confined:chaosdemo-operator"
    installed.kubectl("create", "namespace", ns, check=False)
    docs = [d for d in render(helm, ns, "watchNamespaces={tidb-cluster}") if d["kind"] in RBAC]
    installed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        allowed = [f"{verb} {resource} in {where}" for where in ("kube-system", "kube-node-lease")
                   for verb, resource in WRITES + READS if can_i(installed, sa, verb, resource, where)]
        assert allowed == []
        assert can_i(installed, sa, "create", "events", "tidb-cluster"), "Events on the watched namespace's ChaosDemos"
    finally:
        installed.kubectl("delete", "-f", "-", input=yaml.safe_dump_all(docs), check=False)
        installed.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_two_installs_in_two_namespaces_never_share_an_rbac_object(helm: str) -> None:
    """Each install's rights in a target namespace are its own: with a shared name, the second install's
    binding replaced the first's, and deleting either took the other's rights (seen when the tests ran in
    a random order: the watchNamespaces test removed the installed chart's Role in tidb-cluster)."""
    names = [{(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in render(helm, ns)
              if d["kind"] in RBAC} for ns in ("ops-a", "ops-b")]
    assert names[0] & names[1] == set()


def test_the_chart_grants_target_rights_only_where_asked(helm: str) -> None:
    roles = [d for d in render(helm, "ops", "targetNamespaces={a,b}", "allowedTargetNamespaces={b,c}")
             if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b", "c", "ops"]
    everywhere = render(helm, "ops", "allowedTargetNamespaces={*}")
    wide = [d for d in everywhere if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-target-ops")]
    assert len(wide) == 1 and {"delete"} == {v for r in wide[0]["rules"] if "pods" in r["resources"]
                                             for v in r["verbs"]}
    assert not [r for d in roles for r in d["rules"] if "secrets" in r["resources"]], "no Secret by default"
    named = [r for d in render(helm, "ops", "canary.credentialSecrets={tidb-canary}") if d["kind"] == "Role"
             for r in d["rules"] if "secrets" in r["resources"]]
    assert named == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tidb-canary"],
                      "verbs": ["get"]}], "the canary's Secret, by name, read-only"
    tls = [r for d in render(helm, "ops", "clusterTLS.clientSecrets={basic-cluster-client-secret}")
           if d["kind"] == "Role" for r in d["rules"] if "secrets" in r["resources"]]
    assert tls == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["basic-cluster-client-secret"],
                    "verbs": ["get"]}], "a TLS cluster's client certificate, by name, read-only"


def test_deploy_rbac_is_the_chart_rendered_with_its_defaults(helm: str) -> None:
    def shape(docs: list[dict]) -> list[str]:
        return sorted(json.dumps({"kind": d["kind"], "namespace": d["metadata"].get("namespace"),
                                  "name": d["metadata"]["name"], "rules": d.get("rules"),
                                  "roleRef": [(d.get("roleRef") or {}).get(k) for k in ("kind", "name")],
                                  "subjects": d.get("subjects")}, sort_keys=True) for d in docs if d["kind"] in RBAC)
    deploy = list(yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text()))
    assert shape(deploy) == shape(render(helm, "chaosdemo-system"))


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

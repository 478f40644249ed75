"""No confused deputy: who may create which ChaosDemo, decided on the real API server with the user's identity.

deploy/admission-policy.yaml (a ValidatingAdmissionPolicy with CEL authorizer
checks) is applied to the local tier's kube-apiserver; users of different
rights are impersonated; each refusal is checked by its message.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import yaml

from chaosdemo_local.cluster.env import LocalEnv

from .conftest import REPO

pytestmark = pytest.mark.local
CHART = REPO / "charts" / "chaosdemo-operator"
POLICY = "ValidatingAdmissionPolicy 'chaosdemo-creator-may-break-it'"

# who: (RBAC rules in the demo's namespace, rules in the target namespace)
CREATE = {"apiGroups": ["chaosdemo.dev"], "resources": ["chaosdemos", "chaosdemosuites"],
          "verbs": ["create", "get", "update", "patch"]}
CREATE_SUITE = {"apiGroups": ["chaosdemo.dev"], "resources": ["chaosdemosuites"], "verbs": ["create"]}
SUITE_POLICY = "ValidatingAdmissionPolicy 'chaosdemo-suite-creator-may-break-it'"
DELETE_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}
NODE_KILL = {"apiGroups": ["chaosdemo.dev"], "resources": ["chaosdemos"], "verbs": ["node-kill"]}
SECRET = "tidb-canary"
GET_SECRET = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [SECRET]}
USERS = {
    "viewer": ([CREATE], []),  # may create ChaosDemos, may not break anything
    "pod-deleter": ([CREATE], [DELETE_PODS]),  # may delete pods in the target namespace
    "node-killer": ([CREATE], [DELETE_PODS, NODE_KILL]),  # granted node-kill on purpose
    "node-kill-only": ([CREATE], [NODE_KILL]),
    "secret-reader": ([CREATE], [DELETE_PODS, GET_SECRET]),  # may also read the canary's Secret
    "suite-maker": ([CREATE_SUITE], [DELETE_PODS, NODE_KILL]),  # may create suites, not ChaosDemos
}

# (user, action, allowed, words of the refusal)
TABLE = [
    ("viewer", "pod-delete", False, "viewer may not delete pods there (kubectl auth can-i delete pods -n {target})"),
    ("viewer", "pod-kill", False, "a ChaosDemo with pod-kill deletes, kills, stops or cuts off a TiKV pod in "
                                  "namespace {target}"),
    ("viewer", "process-pause", False, "viewer may not delete pods there"),
    ("viewer", "network-partition", False, "viewer may not delete pods there"),
    ("pod-deleter", "process-pause", True, ""),
    ("pod-deleter", "network-partition", True, ""),
    ("node-kill-only", "process-pause", False, "node-kill-only may not delete pods there"),
    ("node-kill-only", "network-partition", False, "node-kill-only may not delete pods there"),
    ("viewer", "container-kill", False, "viewer may not delete pods there"),
    ("viewer", "node-kill", False, "viewer lacks the verb node-kill on chaosdemos.chaosdemo.dev in namespace {target}"),
    ("pod-deleter", "pod-delete", True, ""),
    ("pod-deleter", "pod-kill", True, ""),
    ("pod-deleter", "container-kill", True, ""),
    ("pod-deleter", "node-kill", False, "which an administrator grants on purpose"),
    ("node-killer", "pod-delete", True, ""),
    ("node-killer", "pod-kill", True, ""),
    ("node-killer", "container-kill", True, ""),
    ("node-killer", "node-kill", True, ""),
    ("node-kill-only", "pod-delete", False, "node-kill-only may not delete pods there"),
    ("node-kill-only", "pod-kill", False, "node-kill-only may not delete pods there"),
    ("node-kill-only", "container-kill", False, "node-kill-only may not delete pods there"),
    ("node-kill-only", "node-kill", True, ""),
]


@pytest.fixture(scope="module")
def policy(local_env: LocalEnv) -> Iterator[dict[str, str]]:
    """A demo namespace and a target namespace with the users' rights in them, under the policy that the
    local tier installs as the chart does (``chaosdemo-local up``)."""
    suffix = uuid.uuid4().hex[:6]
    home, target = f"adm-home-{suffix}", f"adm-target-{suffix}"
    for ns in (home, target):
        local_env.kubectl("create", "namespace", ns)
    for user, (home_rules, target_rules) in USERS.items():
        for ns, rules in ((home, home_rules), (target, target_rules)):
            if not rules:
                continue
            docs = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                     "metadata": {"name": user, "namespace": ns}, "rules": rules},
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": user, "namespace": ns},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}]
            local_env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    in_force(local_env, home, target)
    try:
        yield {"home": home, "target": target}
    finally:
        local_env.kubectl("delete", "namespace", home, target, "--wait=false", check=False)


def in_force(env: LocalEnv, home: str, target: str, timeout: float = 30) -> None:
    """Wait until the API server enforces what was just applied.

    The API server loads a new admission policy and new RBAC bindings from its
    informers, a moment after the objects are stored: a request sent at once
    can pass the policy it has not loaded yet.
    """
    deadline = time.monotonic() + timeout
    checks = [(user, ns, rule) for user, rules in USERS.items()
              for ns, ns_rules in zip((home, target), rules, strict=True) for rule in ns_rules]
    while True:
        refused = env.kubectl("create", "--dry-run=server", "--as", "viewer", "-f", "-",
                              input=demo(home, target, "pod-delete"), check=False)
        pending = [] if POLICY in refused.stderr else ["the policy refusing viewer"]
        refused = env.kubectl("create", "--dry-run=server", "--as", "viewer", "-f", "-",
                              input=suite(home, target, ["none"]), check=False)
        pending += [] if SUITE_POLICY in refused.stderr else ["the suite policy refusing viewer"]
        for user, ns, rule in checks:
            resource = f"{rule['resources'][0]}.{rule['apiGroups'][0]}".rstrip(".")
            resource += "".join(f"/{n}" for n in rule.get("resourceNames", [])[:1])
            can = env.kubectl("auth", "can-i", rule["verbs"][0], resource, "-n", ns, "--as", user, check=False)
            if can.stdout.strip() != "yes":
                pending.append(f"{user} may {rule['verbs'][0]} {resource} in {ns}")
        if not pending:
            return
        assert time.monotonic() < deadline, f"not in force after {timeout}s: {pending}"
        time.sleep(0.2)


def demo(namespace: str, target: str, action: str) -> str:
    return json.dumps({"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
                       "metadata": {"name": f"{action}-{uuid.uuid4().hex[:6]}", "namespace": namespace},
                       "spec": {"cluster": {"name": "basic", "namespace": target}, "fault": {"action": action},
                                "dryRun": True}})


def suite(namespace: str, target: str, actions: list[str], secret: str = "") -> str:
    steps = [{"name": f"s{i}", "fault": {"action": a}, **({"canary": {"credentialsSecret": secret}} if secret else {})}
             for i, a in enumerate(actions)]
    return json.dumps({"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemoSuite",
                       "metadata": {"name": f"suite-{uuid.uuid4().hex[:6]}", "namespace": namespace},
                       "spec": {"cluster": {"name": "basic", "namespace": target}, "steps": steps}})


@pytest.mark.parametrize(("user", "actions", "secret", "words"), [
    ("pod-deleter", ["none", "pod-kill", "process-pause"], "", ""),
    ("node-killer", ["pod-kill", "node-kill", "none"], "", ""),
    ("secret-reader", ["pod-kill"], SECRET, ""),
    ("viewer", ["none"], "", "viewer may not delete pods there"),
    ("pod-deleter", ["pod-kill", "node-kill"], "", "pod-deleter lacks the verb node-kill"),
    ("node-kill-only", ["node-kill", "pod-kill"], "", "node-kill-only may not delete pods there"),
    ("pod-deleter", ["pod-kill"], SECRET, f"with Secrets {SECRET} in"),
    ("suite-maker", ["pod-kill"], "", "suite-maker may not create ChaosDemos there"),
])
def test_a_suite_needs_of_its_creator_every_right_its_steps_need(local_env: LocalEnv, policy: dict[str, str],
                                                                 user: str, actions: list[str], secret: str,
                                                                 words: str) -> None:
    """Issue 33: the operator creates a suite's demos as itself, so the suite is checked against its creator, step
    by step, when it is created (its spec is frozen after): a suite is no way around the per-action rights."""
    out = local_env.kubectl("create", "--dry-run=server", "--as", user, "-f", "-",
                            input=suite(policy["home"], policy["target"], actions, secret), check=False)
    if not words:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode != 0 and SUITE_POLICY in out.stderr, out.stderr
        assert words in out.stderr, out.stderr


@pytest.mark.parametrize(("user", "action", "allowed", "words"), TABLE)
def test_who_may_create_which_chaosdemo(local_env: LocalEnv, policy: dict[str, str], user: str, action: str,
                                         allowed: bool, words: str) -> None:
    # Server-side dry run: admission runs in full, nothing is stored, and the operator never sees it.
    out = local_env.kubectl("create", "--dry-run=server", "--as", user, "-f", "-",
                            input=demo(policy["home"], policy["target"], action), check=False)
    if allowed:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode != 0, f"{user} was let through to {action}"
        assert POLICY in out.stderr
        assert words.format(target=policy["target"]) in out.stderr, out.stderr


@pytest.mark.parametrize(("user", "allowed"), [("pod-deleter", False), ("secret-reader", True)])
def test_naming_the_canarys_secret_needs_the_right_to_read_it(local_env: LocalEnv, policy: dict[str, str], user: str,
                                                               allowed: bool) -> None:
    """Issue 31: the canary logs in with what the Secret holds, so whoever names it must be allowed to get it."""
    body = json.loads(demo(policy["home"], policy["target"], "pod-delete"))
    body["spec"]["canary"] = {"credentialsSecret": SECRET}
    out = local_env.kubectl("create", "--dry-run=server", "--as", user, "-f", "-", input=json.dumps(body), check=False)
    if allowed:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode != 0 and POLICY in out.stderr
        assert f"pod-deleter may not get it (kubectl auth can-i get secrets/{SECRET} -n {policy['target']})" \
            in out.stderr, out.stderr


def test_the_target_defaults_to_the_demos_own_namespace(local_env: LocalEnv, policy: dict[str, str]) -> None:
    """pod-deleter may delete pods only in the target namespace: a demo aimed at its own namespace is refused."""
    body = json.loads(demo(policy["home"], policy["target"], "pod-delete"))
    del body["spec"]["cluster"]["namespace"]
    out = local_env.kubectl("create", "--dry-run=server", "--as", "pod-deleter", "-f", "-", input=json.dumps(body),
                            check=False)
    assert out.returncode != 0 and f"a TiKV pod in namespace {policy['home']}" in out.stderr


def test_the_operator_may_still_write_finalizers_and_status(local_env: LocalEnv, policy: dict[str, str]) -> None:
    """Writes that leave the spec alone are not the creator's request to break something."""
    created = local_env.kubectl("create", "-f", "-", "-o", "jsonpath={.metadata.name}",
                                input=demo(policy["home"], policy["target"], "node-kill"))
    name = created.stdout
    patch = local_env.kubectl("patch", "chaosdemo", name, "-n", policy["home"], "--as", "viewer", "--type=merge",
                              "-p", '{"metadata": {"annotations": {"x": "y"}}}', check=False)
    assert patch.returncode == 0, patch.stderr
    respec = local_env.kubectl("patch", "chaosdemo", name, "-n", policy["home"], "--as", "viewer", "--type=merge",
                               "-p", '{"spec": {"dryRun": false}}', check=False)
    assert respec.returncode != 0 and "spec cannot change once the ChaosDemo exists" in respec.stderr
    local_env.kubectl("delete", "chaosdemo", name, "-n", policy["home"], "--wait=false", check=False)


def test_the_chart_installs_the_same_policy_by_default(local_env: LocalEnv) -> None:
    import subprocess

    helm = subprocess.run(["bash", str(REPO / "hack" / "build-helm.sh")], capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]

    def render(*extra: str) -> list[dict[str, object]]:
        out = subprocess.run([helm, "template", "x", str(CHART), "--kube-version", "1.36.3", *extra],
                             capture_output=True, text=True, check=True).stdout
        return [d for d in yaml.safe_load_all(out) if d and "AdmissionPolicy" in str(d.get("kind"))]

    deploy = list(yaml.safe_load_all((REPO / "deploy" / "admission-policy.yaml").read_text()))

    def key(d: dict[str, object]) -> str:
        return f"{d['kind']}/{d['metadata']['name']}"  # type: ignore[index]

    assert sorted(render(), key=key) == sorted(deploy, key=key)
    assert render("--set", "admissionPolicy.enabled=false") == []


def test_only_the_operator_writes_status(local_env: LocalEnv, policy: dict[str, str]) -> None:
    """Issue 20, finding 1: a user with every right on ChaosDemos and their status in a namespace (a namespace
    admin's wide Role) may not rewrite a demo's status (seen to fail before: the patch was accepted)."""
    ns = policy["home"]
    wide = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "wide", "namespace": ns},
             "rules": [{"apiGroups": ["chaosdemo.dev"], "resources": ["*"], "verbs": ["*"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "wide", "namespace": ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wide"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ns-admin"}]}]
    local_env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(wide))
    name = local_env.kubectl("create", "-f", "-", "-o", "jsonpath={.metadata.name}",
                             input=demo(ns, policy["target"], "pod-delete")).stdout
    try:
        forge_status_as_a_namespace_admin(local_env, ns, name)
    finally:  # the module's namespace outlives this test: what the test added to it goes now
        local_env.kubectl("delete", "chaosdemo", name, "-n", ns, "--wait=false", check=False)
        local_env.kubectl("delete", "-f", "-", "--wait=false", input=yaml.safe_dump_all(wide), check=False)


def forge_status_as_a_namespace_admin(local_env: LocalEnv, ns: str, name: str) -> None:
    forged = json.dumps({"status": {"phase": "Pending", "injection": {"action": "pod-delete",
                                                                       "requestedAt": "2026-12-02T00:00:00.000Z"}}})
    deadline = time.monotonic() + 30
    while True:  # until the API server has loaded the RoleBinding: then only the policy can refuse
        can = local_env.kubectl("auth", "can-i", "patch", "chaosdemos.chaosdemo.dev", "--subresource=status",
                                "-n", ns, "--as", "ns-admin", check=False)
        if can.stdout.strip() == "yes":
            break
        assert time.monotonic() < deadline, "the RoleBinding never took effect"
        time.sleep(0.2)
    out = local_env.kubectl("patch", "chaosdemo", name, "-n", ns, "--as", "ns-admin", "--subresource=status",
                            "--type=merge", "-p", forged, check=False)
    assert out.returncode != 0, "the status patch was accepted"
    assert "ValidatingAdmissionPolicy 'chaosdemo-status-is-the-operators'" in out.stderr, out.stderr
    assert "ns-admin lacks the verb write-status" in out.stderr, out.stderr

"""Issue 20, finding 2: node-kill takes down one store, never more (pure half; seen to fail before: nothing
refused a node with two stores, a PD majority, the control plane or the operator's own node)."""

import random

import pytest

from chaosdemo.api.errors import TargetError
from chaosdemo.api.models import TargetSpec
from chaosdemo.core.targeting import select_target, why_node_refused

from .helpers import healthy

ONE_PD = (("basic-pd-0", True),)
THREE_PD = (("basic-pd-0", True), ("basic-pd-1", True), ("basic-pd-2", True))


def why(node="w1", labels=None, tikv=1, pd=(), members=THREE_PD, operator="", others=()):
    return why_node_refused(node, labels=labels or {}, tikv_on_node=tikv, pd_on_node=list(pd), pd_members=members,
                            operator_node=operator, cluster="basic", namespace="tidb-cluster", others=list(others))


def test_a_node_with_one_store_and_no_pd_majority_may_be_killed():
    assert why() == ""
    assert why(pd=["basic-pd-1"]) == "", "2 of 3 PD members are left: quorum holds"


@pytest.mark.parametrize(("kw", "says"), [
    ({"labels": {"node-role.kubernetes.io/control-plane": ""}}, "control plane"),
    ({"operator": "w1"}, "runs this operator"),
    ({"tikv": 2}, "hosts 2 TiKV stores"),
    ({"pd": ["basic-pd-0"], "members": ONE_PD}, "below PD's quorum of 1"),
    ({"pd": ["basic-pd-0", "basic-pd-1"]}, "1 of 3 PD members would be left"),
])
def test_a_node_whose_loss_takes_more_than_one_store_is_refused(kw, says):
    assert says in why(**kw)


# --- issue 32: the quorum guard on a production-shaped cluster (clusterDomain, members PD could not name)

FQDN = tuple((f"basic-pd-{i}.basic-pd-peer.tidb-cluster.svc.cluster.example", True) for i in range(3))


def test_pd_members_named_by_their_fqdn_under_cluster_domain_are_matched_to_their_pods():
    # Seen to fail before: tidb-operator names members <pod>.<cluster>-pd-peer.<ns>.svc.<domain> when the
    # TidbCluster sets clusterDomain; the guard compared pod names, found no PD member on the node and
    # would have let a node-kill take the only PD.
    only = (FQDN[0],)
    assert "below PD's quorum of 1" in why(pd=["basic-pd-0"], members=only)
    assert "1 of 3 PD members would be left" in why(pd=["basic-pd-0", "basic-pd-1"], members=FQDN)
    assert why(pd=["basic-pd-2"], members=FQDN) == ""
    no_domain = tuple((f"basic-pd-{i}.basic-pd-peer.tidb-cluster.svc", True) for i in range(3))
    assert "1 of 3" in why(pd=["basic-pd-1", "basic-pd-2"], members=no_domain)


@pytest.mark.parametrize(("members", "says"), [
    (None, "PD did not say which of its members are healthy"),
    ((), "match none of the members"),
    ((("basic-pd-0.other-pd-peer.tidb-cluster.svc", True),), "match none of the members"),
    ((("basic-pd-0.basic-pd-peer.elsewhere.svc", True),), "match none of the members"),
])
def test_a_pd_pod_whose_member_cannot_be_found_refuses_its_node(members, says):
    assert says in why(pd=["basic-pd-0"], members=members)
    assert why(pd=[], members=members) == "", "no PD pod on the node: PD's quorum is not at stake"


def test_members_of_another_kubernetes_cluster_count_toward_quorum_and_an_unhealthy_one_does_not():
    across = (*FQDN[:1], ("pd-east-0", True), ("pd-east-1", True))
    assert why(pd=["basic-pd-0"], members=across) == "", "2 of 3 healthy members are left"
    sick = (FQDN[0], ("basic-pd-1", False), ("basic-pd-2", True))
    assert "1 of 3 PD members would be left" in why(pd=["basic-pd-0"], members=sick)


def test_a_random_node_kill_target_is_chosen_away_from_refused_nodes_and_a_named_one_is_refused():
    s = healthy()
    refused = {s.pods[0].node: "it hosts PD member(s) basic-pd-0: ..."}
    for seed in range(20):
        got = select_target(list(s.pods), list(s.stores), TargetSpec(), "basic", "tidb-cluster",
                            rng=random.Random(seed), refused_nodes=refused)
        assert got.pod.node not in refused and "not on" in got.selection
    with pytest.raises(TargetError, match=r"refusing to kill node .* hosts PD member") as e:
        select_target(list(s.pods), list(s.stores), TargetSpec(pod=s.pods[0].name), "basic", "tidb-cluster",
                      refused_nodes=refused)
    assert e.value.reason == "NodeKillRefused"
    every = {p.node: "no" for p in s.pods}
    with pytest.raises(TargetError, match="no TiKV pod's node may be killed"):
        select_target(list(s.pods), list(s.stores), TargetSpec(), "basic", "tidb-cluster", refused_nodes=every)


# --- issue 30: node-kill counts everyone on the node, not just the demo's own cluster

def pod(ns, name, *, owner=None, phase="Running"):
    refs = [{"kind": owner, "name": "x", "uid": "u", "controller": True}] if owner else []
    return {"metadata": {"namespace": ns, "name": name, "ownerReferences": refs}, "status": {"phase": phase}}


def test_a_node_running_another_tenants_pods_is_refused_daemonsets_and_node_agents_aside():
    from chaosdemo.core.targeting import others_on_node

    on_node = [pod("tidb-cluster", "basic-tikv-1", owner="StatefulSet"), pod("tidb-cluster", "stray"),
               pod("kube-system", "kube-proxy-abc", owner="DaemonSet"), pod("kube-system", "coredns-1"),
               pod("monitoring", "node-exporter-x", owner="DaemonSet"), pod("team-b", "pd-0", owner="StatefulSet"),
               pod("team-c", "job-1", phase="Succeeded")]
    others = others_on_node(on_node, "tidb-cluster")
    assert others == ["team-b/pd-0"]
    assert "pods of other namespaces (team-b/pd-0)" in why(others=others)
    assert why(others=[]) == ""
    many = [f"t{i}/p" for i in range(5)]
    assert "t0/p, t1/p, t2/p and 2 more" in why(others=many)

"""Issue 20, finding 1: a resumed run confirms from the cluster what its status names (pure half)."""

import pytest

from chaosdemo.api.models import TargetStatus
from chaosdemo.core.targeting import why_record_refused

TC = {"metadata": {"name": "basic", "uid": "tc-uid"}}
STS = {"metadata": {"name": "basic-tikv", "uid": "sts-uid", "ownerReferences": [
    {"kind": "TidbCluster", "name": "basic", "uid": "tc-uid", "controller": True}]}}


def pod(name: str = "basic-tikv-1", node: str = "w1", owner_uid: str = "sts-uid") -> dict:
    return {"metadata": {"name": name, "ownerReferences": [
        {"kind": "StatefulSet", "name": "basic-tikv", "uid": owner_uid, "controller": True}]},
        "spec": {"nodeName": node}}


NODE = {"metadata": {"name": "w1", "labels": {}}}
TARGET = TargetStatus(pod="basic-tikv-1", pod_uid="u1", node="w1")


def why(target=TARGET, *, tidbcluster=TC, statefulset=STS, pod_=None, node=NODE, node_level=True):
    return why_record_refused(target, "basic", tidbcluster=tidbcluster, statefulset=statefulset,
                              pod=pod() if pod_ is None else pod_, node=node, node_level=node_level)


def test_a_record_the_cluster_confirms_passes():
    assert why() == ""
    assert why(node_level=False, node=None) == ""


def test_a_deleted_pod_not_back_yet_still_passes_on_its_statefulsets_name():
    assert why_record_refused(TARGET, "basic", tidbcluster=TC, statefulset=STS, pod=None, node=NODE,
                              node_level=True) == ""


@pytest.mark.parametrize(("change", "says"), [
    ({"target": None}, "no target"),
    ({"tidbcluster": None}, "does not exist"),
    ({"target": TargetStatus(pod="kube-apiserver-0", pod_uid="u", node="w1")}, "not a pod name"),
    ({"target": TargetStatus(pod="basic-tikv-1", pod_uid="u", node="../../x")}, "not a node name"),
    ({"statefulset": {"metadata": {"name": "basic-tikv", "uid": "sts-uid"}}}, "not controlled by TidbCluster"),
    ({"pod_": pod(owner_uid="someone-else")}, "not controlled by StatefulSet"),
    ({"pod_": pod(node="w2")}, "is not the node of pod"),
    ({"node": None}, "not a Node of this Kubernetes cluster"),
    ({"node": {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}}}, "control plane"),
])
def test_a_record_the_cluster_does_not_confirm_is_refused_with_why(change, says):
    assert says in why(**change)


def test_only_pods_the_tidbclusters_statefulset_controls_are_members():
    """Issue 20, finding 4: a pod that copies the TiKV labels is never a target (seen before: it could be)."""
    from dataclasses import replace

    from chaosdemo.core.targeting import members

    from .helpers import healthy

    s = healthy()
    sts = replace(s.statefulset, uid="sts-uid", owner="TidbCluster/basic/tc-uid")
    own = [replace(p, owner="StatefulSet/basic-tikv/sts-uid") for p in s.pods]
    planted = replace(s.pods[0], name="basic-tikv-9", uid="planted", owner="")
    assert members([*own, planted], sts, "basic", "tc-uid") == own
    assert members(own, replace(sts, owner="TidbCluster/basic/other-uid"), "basic", "tc-uid") == []
    assert members(own, None, "basic", "tc-uid") == []

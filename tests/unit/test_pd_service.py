"""Issue 20, finding 4: PD is reached only through the TidbCluster's own PD Service (pure half)."""

from chaosdemo.core.targeting import why_pd_service_refused

OWNED = {"kind": "TidbCluster", "name": "basic", "uid": "tc-uid", "controller": True}


def service(kind: str = "ClusterIP", owners: list | None = None) -> dict:
    return {"metadata": {"name": "basic-pd", "ownerReferences": [OWNED] if owners is None else owners},
            "spec": {"type": kind}}


def why(svc: dict | None) -> str:
    return why_pd_service_refused(svc, "basic-pd", "basic", "tc-uid")


def test_tidb_operators_own_pd_service_is_trusted():
    assert why(service()) == ""


def test_an_external_name_service_is_refused_even_when_owned():
    assert "ExternalName" in why(service("ExternalName"))


def test_a_service_the_tidbcluster_does_not_control_is_refused():
    assert "not controlled by TidbCluster basic" in why(service(owners=[]))
    assert "not controlled" in why(service(owners=[{**OWNED, "uid": "another-cluster-of-that-name"}]))
    assert "not controlled" in why(service(owners=[{**OWNED, "controller": False}]))


def test_a_missing_service_is_refused():
    assert why(None) == "Service basic-pd does not exist"

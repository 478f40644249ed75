"""The deletion handler's cleanup of a demo that never ran: it ends, whatever rights the operator lacks.

The Kubernetes API is a FAKE here (a Leases stand-in that refuses as the API server does, HTTP 403);
the local tier runs the same path against the real API server under the operator's ServiceAccount
(tests/local/test_deploy.py), and its teardown check fails a test whose demo stays Terminating.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from chaosdemo.api.errors import Forbidden
from chaosdemo.api.settings import Settings
from chaosdemo.run.lifecycle import cleanup


class RefusingLeases:
    """FAKE Leases client: a namespace the operator holds no Role in answers 403, as the API server does."""

    def __init__(self, granted: set[str]) -> None:
        self.granted, self.released = granted, []

    async def release(self, namespace: str, name: str, holder: str) -> None:
        if namespace not in self.granted:
            raise Forbidden(f"Kubernetes API refused to let the operator release lease {namespace}/{name}: "
                            "HTTP 403 Forbidden", reason="Forbidden")
        self.released.append(f"{namespace}/{name}")


def aborted_demo(cluster_namespace: str) -> dict[str, object]:
    return {"metadata": {"name": "d", "namespace": "home", "uid": "u1"},
            "spec": {"cluster": {"name": "basic", "namespace": cluster_namespace}},
            "status": {"phase": "Aborted"}}


def deps(targets: str, granted: set[str]) -> SimpleNamespace:
    return SimpleNamespace(settings=Settings(target_namespaces=targets),
                           kube=SimpleNamespace(leases=RefusingLeases(granted)))


@pytest.mark.parametrize(("targets", "why"), [
    ("tidb-cluster,ungranted", "HTTP 403"),  # allowed by the operator's list, not granted by RBAC
    ("tidb-cluster", "not an allowed target"),  # not even allowed: nothing is asked of the API server
])
def test_a_demo_refused_in_a_namespace_the_operator_may_not_touch_is_deleted_at_once(targets: str, why: str) -> None:
    d = deps(targets, granted={"tidb-cluster"})
    done = asyncio.run(cleanup(d, aborted_demo("ungranted")))  # type: ignore[arg-type]
    assert "no Lease" in done and why in done, done
    assert d.kube.leases.released == []


def test_a_granted_namespace_has_its_lease_released() -> None:
    d = deps("tidb-cluster", granted={"tidb-cluster"})
    done = asyncio.run(cleanup(d, aborted_demo("tidb-cluster")))  # type: ignore[arg-type]
    assert done == "released the cluster for other demos"
    assert d.kube.leases.released == ["tidb-cluster/chaosdemo-basic"]

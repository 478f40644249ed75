"""Issue 20, finding 4: PD is reached only through the TidbCluster's own PD Service.

A Service of the target namespace is written by whoever may create one there. Before this, a pdURL naming
an ExternalName Service (DNS to anywhere) or any other Service was fetched, and its answer, or how it
failed, reached the demo's status. Now the Service is read first, and anything but the TidbCluster's own
is refused with nothing fetched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator

pytestmark = pytest.mark.local

PLANTED = [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "evil-pd", "namespace": "tidb-cluster"},
     "spec": {"type": "ExternalName", "externalName": "pd.attacker.invalid"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other-pd", "namespace": "tidb-cluster"},
     "spec": {"ports": [{"port": 2379}], "selector": {"app": "anything"}}},
]


@pytest.fixture
def planted(local_env: LocalEnv) -> Iterator[None]:
    for svc in PLANTED:
        local_env.kubectl("apply", "-f", "-", input=json.dumps(svc))
    yield
    for svc in PLANTED:
        local_env.kubectl("delete", "service", svc["metadata"]["name"], "-n", "tidb-cluster", "--wait=false",
                          check=False)


@pytest.mark.parametrize(("service", "why"), [
    ("evil-pd", "Service evil-pd is an ExternalName Service (DNS to anywhere)"),
    ("other-pd", "Service other-pd is not controlled by TidbCluster basic"),
    ("missing-pd", "Service missing-pd does not exist"),
])
def test_a_pd_url_naming_a_service_that_is_not_the_tidbclusters_own_is_refused_before_any_fetch(
        planted: None, operator: Operator, demos: Demos, service: str, why: str) -> None:
    operator.start()
    demos.apply("elsewhere", cluster={"pdURL": f"http://{service}:2379"}, dryRun=True)
    st = demos.wait("elsewhere")["status"]
    assert st["phase"] == "Aborted" and "PDServiceRefused" in st["message"], st["message"]
    assert why in st["message"] and "nothing was fetched" in st["message"], st["message"]


# tidb-operator's own PD Service passes the check: test_lifecycle.py's PDUnreachable case is fetched at its
# fully qualified name, past the check.

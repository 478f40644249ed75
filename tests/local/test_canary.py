"""The SQL canary through whole demos on the local tier (issue 31): the operator's paths (its database made
and dropped, the baseline, the impact block and TiDB's clients as an observer, a budget that aborts a held
fault at once, a TiDB that cannot be used refused before anything is injected).

The TiDB here is SIMULATED (proving/.../simulation/tidb_sql.py: the canary's statements over the real MySQL
protocol, its rows' availability played from the SIMULATED PD's stores), so these tests assert the
operator's paths and the facts the simulation makes certain, never what real consensus would cost: that
is the kind tier's proof."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from chaosdemo.api.timestamps import parse_iso
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator
from chaosdemo_local.simulation.tidb_sql import CANARY_USER

pytestmark = pytest.mark.local

CANARY = {"enabled": True, "baselineSeconds": 3, "ratePerSecond": 20}


@pytest.fixture
def login(local_env: LocalEnv) -> Iterator[Callable[[str, str], str]]:
    """Secrets with a canary user and password in the TidbCluster's namespace, deleted after the test."""
    made: list[str] = []

    def make(user: str, password: str) -> str:
        name = f"canary-login-{uuid.uuid4().hex[:6]}"
        local_env.kubectl("create", "secret", "generic", name, "-n", "tidb-cluster", f"--from-literal=user={user}",
                          f"--from-literal=password={password}")
        made.append(name)
        return name

    yield make
    if made:
        local_env.kubectl("delete", "secret", *made, "-n", "tidb-cluster", "--ignore-not-found", check=False)


def test_a_pod_kill_measures_what_the_clients_felt_and_drops_its_database(
        local_env: LocalEnv, operator: Operator, demos: Demos, login: Callable[[str, str], str]) -> None:
    operator.start()
    secret = login(*CANARY_USER)  # the canary logs in as the Secret's user, not root
    demos.apply("felt", fault={"action": "pod-kill"}, canary={**CANARY, "credentialsSecret": secret},
                timeouts={"stabilitySeconds": 2})
    st = demos.wait("felt", timeout=120)["status"]
    assert st["phase"] == "Succeeded", st["message"]
    impact = st["impact"]
    assert 15 <= impact["baselineThroughput"] <= 25, "about the canary's rate, before the injection"
    assert impact["statements"] > 0 and impact["bankTotalHeld"] is True
    assert impact["affectedRowsShare"] == pytest.approx(1 / 3, abs=0.05), "3 stores, each leading a part"
    assert impact["otherRows"]["failed"] == 0, "only the killed store's rows can fail in the simulation"
    assert impact["otherRows"]["ok"] > 0 and impact["budgetBreaches"] == []
    assert set(impact["failures"]) <= {"9005", "timeout"}, impact["failures"]
    assert sum(impact["failures"].values()) == impact["affectedRows"]["failed"], "every failure kept, by code"
    clients = next(o for o in st["observers"] if o["observer"] == "tidb-clients")
    if impact["affectedRows"]["failed"]:
        assert clients["sawFaultAt"] >= st["injectedAt"] and "9005" in clients["what"], clients
    else:
        assert clients["what"] == "never showed the fault", clients
    reasons = [e["reason"] for e in demos.events("felt")]
    assert reasons.index("CanaryStarted") < reasons.index("FaultInjected"), reasons
    assert "UNAVAILABLE(S)" in local_env.kubectl("get", "chaosdemos", "-n", demos.ns).stdout
    assert not _database_of(local_env, demos, "felt"), "the canary dropped its database"


def test_a_broken_budget_with_abort_undoes_a_held_fault_at_once_and_fails_the_demo(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    if local_env.dockerd is None:
        pytest.skip(f"node-kill needs the local tier's Docker engine: {local_env.docker_error}")
    operator.start()
    demos.apply("tight", fault={"action": "node-kill", "nodeDownSeconds": 50},
                canary={**CANARY, "statementTimeoutSeconds": 1, "abortOnBreach": True,
                        # The SIMULATED store stalls its rows for about a second: any statement over 0.1 s keeps
                        # users unserved, and 1 s is the tightest serve-again budget the schema takes.
                        "budget": {"maxStatementSeconds": 0.1, "serveAgainSeconds": 1}},
                timeouts={"detectionSeconds": 30, "recoverySeconds": 120, "stabilitySeconds": 1})
    st = demos.wait("tight", timeout=120)["status"]
    print(f"what the SIMULATED clients felt: {st.get('impact')}")
    summary = demos.condition({"status": st}, "Succeeded")
    assert (st["phase"], summary["reason"]) == ("Failed", "BudgetExceeded"), st["message"]
    assert "abortOnBreach" in st["message"], st["message"]
    undone = parse_iso(st["injection"]["undoneAt"]) - parse_iso(st["injectedAt"])
    assert undone < 50, f"the node was started again {undone:.1f}s after the kill, before its 50s were up"
    assert st["impact"]["budgetBreaches"], st["impact"]
    local_env.wait_healthy(timeout=90)
    assert not _database_of(local_env, demos, "tight")


def test_a_tidb_the_canary_cannot_reach_is_refused_before_anything_is_injected(
        local_env: LocalEnv, operator: Operator, demos: Demos) -> None:
    operator.start(CHAOSDEMO_TIDB_ADDRESS_TEMPLATE="127.0.0.1:9")
    demos.apply("nosql", canary=CANARY)
    st = demos.wait("nosql", timeout=60)["status"]
    assert st["phase"] == "Aborted" and "injectedAt" not in st, st
    preflight = demos.condition({"status": st}, "PreflightPassed")
    assert preflight["reason"] == "CanaryUnavailable", preflight
    assert "spec.canary.enabled: false" in preflight["message"] and "MySQL port" in preflight["message"]


def test_credentials_that_do_not_work_are_refused_before_anything_is_injected(
        operator: Operator, demos: Demos, login: Callable[[str, str], str]) -> None:
    operator.start()
    cases = [(login(CANARY_USER[0], "not-the-password"), "CanaryUnavailable", "1045"),
             ("no-such-secret", "CanaryCredentials", "Secret tidb-cluster/no-such-secret")]
    for n, (secret, reason, words) in enumerate(cases):
        demos.apply(f"login-{n}", canary={**CANARY, "credentialsSecret": secret})
        st = demos.wait(f"login-{n}", timeout=60)["status"]
        assert st["phase"] == "Aborted" and "injectedAt" not in st, st
        preflight = demos.condition({"status": st}, "PreflightPassed")
        assert preflight["reason"] == reason and words in preflight["message"], preflight
        assert CANARY_USER[1] not in preflight["message"] and "not-the-password" not in preflight["message"]


def _database_of(env: LocalEnv, demos: Demos, name: str) -> list[str]:
    """The demo's canary database if the SIMULATED TiDB still holds it, asked over its own MySQL port."""
    import pymysql

    from chaosdemo.core.canary_plan import Plan, database_for

    plan = Plan(database_for(demos.get(name)["metadata"]["uid"]), 64)
    conn = pymysql.connect(host="127.0.0.1", port=env.sql_port, user="root", password="")
    try:
        with conn.cursor() as cur:
            cur.execute(plan.exists())
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()

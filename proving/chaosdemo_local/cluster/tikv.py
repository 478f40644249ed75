"""A TidbCluster's TiKV pods as the tests and the bench read them, on either tier, and a target away from busy nodes."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["NAMESPACE", "OPEN_BUDGET", "TIKV", "ReadsAPI", "node_kill_target", "node_of", "pd_leader_node",
           "pod_away_from", "pod_away_from_pd", "tikv_pods"]

TIKV = "app.kubernetes.io/component=tikv"
NAMESPACE = "tidb-cluster"  # where both tiers run their TidbCluster


class ReadsAPI(Protocol):
    """A tier that answers a GET of an API server path with its JSON (LocalEnv, KindEnv)."""

    def api(self, path: str) -> Any: ...


def _pods(env: ReadsAPI, namespace: str, selector: str) -> list[dict[str, Any]]:
    found = env.api(f"/api/v1/namespaces/{namespace}/pods?labelSelector={urllib.parse.quote(selector)}")
    items: list[dict[str, Any]] = found["items"]
    return items


def tikv_pods(env: ReadsAPI, namespace: str = NAMESPACE) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in _pods(env, namespace, TIKV)}


def node_of(env: ReadsAPI, namespace: str, selector: str) -> str:
    """The node of the first pod the selector matches (PD's, tidb-operator's)."""
    return str(_pods(env, namespace, selector)[0]["spec"]["nodeName"])


Pick = Callable[[Sequence[str]], str]


def first(names: Sequence[str]) -> str:
    return names[0]


def pod_away_from(env: ReadsAPI, namespace: str, busy: set[str], pick: Pick = first) -> str:
    """A TiKV pod on none of the ``busy`` nodes, so their pods keep running while its node is killed.

    The first in name order unless ``pick`` chooses (the bench picks at random).
    """
    names = [n for n, p in sorted(tikv_pods(env, namespace).items()) if p["spec"].get("nodeName") not in busy]
    if not names:
        raise LookupError(f"every TiKV pod in {namespace} shares a node with one of {sorted(busy)}")
    return pick(names)


def pod_away_from_pd(env: ReadsAPI, namespace: str = NAMESPACE, pick: Pick = first) -> str:
    """A TiKV pod whose node does not also host PD: killing that node leaves PD up to see the store go."""
    return pod_away_from(env, namespace, {node_of(env, namespace, "app.kubernetes.io/component=pd")}, pick)


# A canary budget nothing breaks, for a node-kill that takes TiDB down with its node (every statement fails).
OPEN_BUDGET = {"maxUnavailableSeconds": 3600, "minThroughputShare": 0, "maxStatementSeconds": 60,
               "serveAgainSeconds": 7200}


def pd_leader_node(env: ReadsAPI, namespace: str, cluster: str = "basic") -> str:
    """The node of PD's leader, as PD names it (``/pd/api/v1/leader``, through the API server's proxy)."""
    leader = env.api(f"/api/v1/namespaces/{namespace}/services/{cluster}-pd:2379/proxy/pd/api/v1/leader")
    pod = env.api(f"/api/v1/namespaces/{namespace}/pods/{str(leader['name']).split('.')[0]}")
    return str(pod["spec"]["nodeName"])


def node_kill_target(env: ReadsAPI, namespace: str, operator_namespace: str) -> tuple[str, bool]:
    """A TiKV pod for node-kill on kind: on a node with neither PD's leader nor tidb-operator (their loss is
    another demo; a PD follower may go with the node, as PD's quorum allows) and, when the scheduler left one,
    not TiDB either. Returns the pod and whether TiDB shares its node (then the canary's clients lose TiDB
    itself: a finding, and a breach of the default budget)."""
    busy = {pd_leader_node(env, namespace),
            node_of(env, operator_namespace, "app.kubernetes.io/component=controller-manager")}
    tidb = node_of(env, namespace, "app.kubernetes.io/component=tidb")
    try:
        return pod_away_from(env, namespace, busy | {tidb}), False
    except LookupError:
        return pod_away_from(env, namespace, busy), True

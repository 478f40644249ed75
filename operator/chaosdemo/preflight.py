"""Preflight: never inject into a cluster that is already hurt.

The TidbCluster must exist, PD must answer, and every invariant must hold.
Any failure raises ``PreflightFailed`` with the reason, and the demo ends
Aborted with nothing injected. (That no other demo is active on the cluster
is checked by the lifecycle through a Lease.)
"""

from __future__ import annotations

from chaosdemo.errors import PreflightFailed
from chaosdemo.invariants import InvariantConfig, evaluate
from chaosdemo.snapshot import Snapshot

__all__ = ["check_cluster_exists", "check_snapshot"]


def check_cluster_exists(tidbcluster: dict[str, object] | None, namespace: str, name: str) -> None:
    if tidbcluster is None:
        raise PreflightFailed(
            f"TidbCluster {namespace}/{name} does not exist", reason="ClusterNotFound"
        )


def check_snapshot(snapshot: Snapshot, cfg: InvariantConfig) -> None:
    if snapshot.pd_error:
        raise PreflightFailed(f"PD is not reachable: {snapshot.pd_error}", reason="PDUnreachable")
    if not snapshot.pods:
        raise PreflightFailed(
            f"TidbCluster {snapshot.namespace}/{snapshot.cluster} has no TiKV pods",
            reason="NoTiKVPods",
        )
    breaches = evaluate(snapshot, cfg)
    if breaches:
        shown = "; ".join(b.message for b in breaches[:5])
        more = f" (and {len(breaches) - 5} more)" if len(breaches) > 5 else ""
        raise PreflightFailed(
            f"cluster is already unhealthy, refusing to inject: {shown}{more}",
            reason="ClusterUnhealthy",
        )

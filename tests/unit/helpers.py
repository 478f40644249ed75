"""Builders of plain test data (pods, stores, snapshots) shared by the unit tests."""

from __future__ import annotations

from chaosdemo.core.snapshot import NodeState, PodState, Snapshot, StatefulSetState, StoreState

NOW = 1_795_520_100.0


def pod(name: str, *, ready: bool = True, deleting: bool = False, uid: str = "", node: str = "",
        restarts: int = 0) -> PodState:
    return PodState(name=name, uid=uid or f"uid-{name}", node=node or f"node-{name[-1]}",
                    phase="Running" if ready else "Pending", ready=ready, deleting=deleting, restart_count=restarts)


def store(sid: str, pod_name: str, *, state: str = "Up", age: float = 1.0) -> StoreState:
    return StoreState(id=sid, address=f"{pod_name}.basic-tikv-peer.tidb-cluster.svc:20160", state_name=state,
                      last_heartbeat_ns=int((NOW - age) * 1e9), leader_count=16, region_count=48)


def healthy(**overrides: object) -> Snapshot:
    names = ["basic-tikv-0", "basic-tikv-1", "basic-tikv-2"]
    base = dict(
        taken_at=NOW, cluster="basic", namespace="tidb-cluster",
        pods=tuple(pod(n) for n in names),
        statefulset=StatefulSetState("basic-tikv", 3, 3, 3, 3),
        stores=tuple(store(str(i + 1), n) for i, n in enumerate(names)),
        region_checks={"down-peer": 0, "pending-peer": 0, "miss-peer": 0, "offline-peer": 0},
        pd_members=(("basic-pd-0", True),),
        nodes=tuple(NodeState(f"node-{i}", "True") for i in range(3)),
    )
    base.update(overrides)
    return Snapshot(**base)  # type: ignore[arg-type]

"""Target selection: which TiKV pod gets the fault, and which PD store that is.

Pure: takes the pods and stores seen in preflight, returns the choice or
refuses with a reason. The random choice sorts pods by name first, so a seed
gives the same pod on every run against the same cluster.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from chaosdemo.api.errors import TargetError
from chaosdemo.api.models import TargetSpec
from chaosdemo.core.snapshot import PodState, StoreState, pod_name_of_store

__all__ = ["TargetChoice", "select_target"]


@dataclass(frozen=True)
class TargetChoice:
    pod: PodState
    store: StoreState
    selection: str


def select_target(
    pods: Sequence[PodState],
    stores: Sequence[StoreState],
    spec: TargetSpec,
    cluster: str,
    namespace: str,
    rng: random.Random | None = None,
) -> TargetChoice:
    by_name = {p.name: p for p in pods}
    names = sorted(by_name)
    if not names:
        raise TargetError(f"TidbCluster {namespace}/{cluster} has no TiKV pods", reason="NoTiKVPods")
    if spec.pod:
        if spec.pod not in by_name:
            raise TargetError(
                f"pod {spec.pod} is not a TiKV pod of TidbCluster {namespace}/{cluster} "
                f"(its TiKV pods are {', '.join(names)})",
                reason="TargetNotTiKV",
            )
        chosen, how = by_name[spec.pod], "named in spec.target.pod"
    elif spec.seed is not None:
        chosen = by_name[random.Random(spec.seed).choice(names)]
        how = f"random with seed {spec.seed} among {len(names)} TiKV pods"
    else:
        chosen = by_name[(rng or random.SystemRandom()).choice(names)]
        how = f"random among {len(names)} TiKV pods"
    store = next(
        (s for s in stores if pod_name_of_store(s.address, cluster, namespace) == chosen.name),
        None,
    )
    if store is None:
        raise TargetError(
            f"pod {chosen.name} has no store in PD (expected address "
            f"{chosen.name}.{cluster}-tikv-peer.{namespace}.svc:20160)",
            reason="TargetHasNoStore",
        )
    return TargetChoice(pod=chosen, store=store, selection=how)

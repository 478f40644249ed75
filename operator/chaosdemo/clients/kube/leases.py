"""Leases: one demo per TidbCluster (the cluster's Lease), and one acting operator (the leader Lease)."""

from __future__ import annotations

import datetime as dt

from kubernetes_asyncio import client

from chaosdemo.clients.kube.transport import MANAGED_BY, Transport

__all__ = ["Leases"]

GONE_OR_RACED = (404, 409)


class Leases:
    def __init__(self, transport: Transport) -> None:
        self.t = transport
        self.coord = transport.coord

    async def _read(self, namespace: str, name: str, *, absent: tuple[int, ...] = (404,),
                    request_timeout: float | None = None) -> client.V1Lease | None:
        lease: client.V1Lease | None = await self.t.call(
            f"read lease {namespace}/{name}",
            self.coord.read_namespaced_lease(name, namespace, _request_timeout=request_timeout), absent=absent)
        return lease

    # ------------------------------------------------------------ one demo per cluster

    async def acquire(self, namespace: str, name: str, holder: str) -> str | None:
        """Take the per-cluster lease for ``holder``; return the current other holder if taken."""
        body = client.V1Lease(metadata=client.V1ObjectMeta(name=name, labels=dict(MANAGED_BY)),
                              spec=client.V1LeaseSpec(holder_identity=holder))
        if await self.t.call(f"create lease {namespace}/{name}", self.coord.create_namespaced_lease(namespace, body),
                             absent=(409,)) is not None:
            return None
        current = await self._read(namespace, name, absent=())  # it was there a moment ago: gone is a failure
        other = (current.spec.holder_identity or "") if current else ""
        return None if other == holder else other

    async def holder(self, namespace: str, name: str) -> str | None:
        current = await self._read(namespace, name)
        return (current.spec.holder_identity or None) if current else None

    async def take_over(self, namespace: str, name: str, stale: str, holder: str) -> bool:
        """Replace a lease held by a finished or deleted demo; False if someone else won."""
        what = f"take over lease {namespace}/{name}"
        current = await self.t.call(what, self.coord.read_namespaced_lease(name, namespace), absent=GONE_OR_RACED)
        if current is None or (current.spec.holder_identity or "") != stale:
            return False
        current.spec.holder_identity = holder
        replaced = await self.t.call(what, self.coord.replace_namespaced_lease(name, namespace, current),
                                     absent=GONE_OR_RACED)
        return replaced is not None

    async def release(self, namespace: str, name: str, holder: str) -> None:
        """Delete the lease if ``holder`` still holds it (a precondition on what was read)."""
        what = f"release lease {namespace}/{name}"
        current = await self.t.call(what, self.coord.read_namespaced_lease(name, namespace), absent=GONE_OR_RACED)
        if current is None or (current.spec.holder_identity or "") != holder:
            return
        only_this = client.V1Preconditions(resource_version=current.metadata.resource_version)
        await self.t.call(what, self.coord.delete_namespaced_lease(
            name, namespace, body=client.V1DeleteOptions(preconditions=only_this)), absent=GONE_OR_RACED)

    # ------------------------------------------------------------ the operator's own leader Lease

    async def leader(self, namespace: str, name: str) -> tuple[str, str, int] | None:
        """(holder, resourceVersion, leaseDurationSeconds) of the leader Lease, or None if there is none."""
        lease = await self._read(namespace, name, request_timeout=5)
        if lease is None:
            return None
        return lease.spec.holder_identity or "", lease.metadata.resource_version, lease.spec.lease_duration_seconds or 0

    async def claim_leader(self, namespace: str, name: str, holder: str, seconds: int,
                           resource_version: str | None) -> str | None:
        """Create (``resource_version`` None) or renew/take over the leader Lease for ``holder``.

        Optimistic: a replace carries the resourceVersion last read, so of two
        replicas racing for it one wins and the other gets None. Returns the new
        resourceVersion.
        """
        now = dt.datetime.now(dt.UTC)
        spec = client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=seconds, renew_time=now)
        meta = client.V1ObjectMeta(name=name, resource_version=resource_version, labels=dict(MANAGED_BY))
        if resource_version is None:
            spec.acquire_time = now
            call = self.coord.create_namespaced_lease(namespace, client.V1Lease(metadata=meta, spec=spec),
                                                      _request_timeout=5)
        else:
            call = self.coord.replace_namespaced_lease(name, namespace, client.V1Lease(metadata=meta, spec=spec),
                                                       _request_timeout=5)
        lease = await self.t.call(f"claim lease {namespace}/{name}", call, absent=GONE_OR_RACED)
        return None if lease is None else str(lease.metadata.resource_version)

"""A leader stopping cleanly hands its Lease back, even when a renewal cancelled in flight moved it on.

The Leases client is a FAKE that keeps one Lease with a resourceVersion and refuses a stale one (409, as
the API server does: ``claim_leader`` gives None); tests/local/test_replicas.py runs elections against the
real API server, and the local tier's check names a Lease a stopped operator still holds.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from chaosdemo.service.leadership import Leadership


class OneLease:
    """FAKE: one Lease, replaced only with the resourceVersion it has now."""

    def __init__(self, holder: str, version: int) -> None:
        self.holder, self.version = holder, version

    async def claim_leader(self, namespace: str, name: str, holder: str, seconds: int,
                           resource_version: str | None) -> str | None:
        if resource_version != str(self.version):
            return None
        self.holder, self.version = holder, self.version + 1
        return str(self.version)

    async def leader(self, namespace: str, name: str) -> tuple[str, str, int] | None:
        return self.holder, str(self.version), 5


def leading(lease: OneLease, seen: int) -> Leadership:
    leader = Leadership(SimpleNamespace(leases=lease), "default", "me")  # type: ignore[arg-type]
    leader.leading.set()
    leader._version = str(seen)
    return leader


def test_a_renewal_that_landed_after_the_last_answer_does_not_keep_the_lease_held() -> None:
    lease = OneLease("me", version=8)  # this replica last saw 7: its cancelled renewal made it 8
    asyncio.run(leading(lease, seen=7).release())
    assert lease.holder == ""


def test_a_lease_another_replica_took_meanwhile_is_left_to_it() -> None:
    lease = OneLease("other", version=9)
    asyncio.run(leading(lease, seen=7).release())
    assert lease.holder == "other"

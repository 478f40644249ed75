"""PD's HTTP API, read through an injected httpx client.

Only what the invariants and the evidence need. Every failure to get a JSON
answer becomes ``PDUnavailable`` with the URL and the cause: the status code
and its reason phrase, never the body of an answer that is not PD's (it could
be anything, and it would reach status, events and the prompt). Redirects
are not followed.
"""

from __future__ import annotations

from typing import Any

import httpx

from chaosdemo.errors import PDUnavailable

__all__ = ["PDClient"]


class PDClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport,
                                       follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, shape: type[dict[str, Any]] | type[list[Any]]) -> Any:
        try:
            resp = await self._http.get(path)
        except httpx.HTTPError as e:
            raise PDUnavailable(f"PD at {self.base_url} did not answer {path}: {e!r}") from e
        if resp.status_code != 200:
            raise PDUnavailable(
                f"PD at {self.base_url} answered {path} with HTTP {resp.status_code} "
                f"{httpx.codes.get_reason_phrase(resp.status_code)}"
            )
        try:
            result = resp.json()
        except ValueError as e:
            raise PDUnavailable(f"PD at {self.base_url} sent non-JSON for {path}") from e
        if not isinstance(result, shape):
            raise self._unexpected(path, f"a JSON {type(result).__name__}, not a JSON {shape.__name__}")
        return result

    def _unexpected(self, path: str, what: str) -> PDUnavailable:
        return PDUnavailable(f"PD at {self.base_url} sent an answer PD does not give for {path}: {what}")

    async def stores(self) -> dict[str, Any]:
        path = "/pd/api/v1/stores"
        result: dict[str, Any] = await self._get(path, dict)
        entries = result.get("stores") or []
        if not isinstance(entries, list) or not all(_store_entry(e) for e in entries):
            raise self._unexpected(path, "stores is not a list of {store, status} objects with numeric counters")
        return result

    async def health(self) -> list[dict[str, Any]]:
        path = "/pd/api/v1/health"
        result: list[dict[str, Any]] = await self._get(path, list)
        if not all(isinstance(m, dict) for m in result):
            raise self._unexpected(path, "not a list of members")
        return result

    async def members(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._get("/pd/api/v1/members", dict)
        return result

    async def replication(self) -> dict[str, Any]:
        path = "/pd/api/v1/config/replicate"
        result: dict[str, Any] = await self._get(path, dict)
        if not _numbers(result, ("max-replicas",)):
            raise self._unexpected(path, "max-replicas is not a number")
        return result

    async def region_check(self, check: str) -> dict[str, Any]:
        path = f"/pd/api/v1/regions/check/{check}"
        result: dict[str, Any] = await self._get(path, dict)
        if not _numbers(result, ("count",)):
            raise self._unexpected(path, "count is not a number")
        return result


def _numbers(obj: dict[str, Any], keys: tuple[str, ...]) -> bool:
    return all(isinstance(obj.get(k, 0), int) and not isinstance(obj.get(k, 0), bool) for k in keys)


def _store_entry(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    store, status = entry.get("store", {}), entry.get("status", {})
    return (isinstance(store, dict) and isinstance(status, dict) and _numbers(store, ("id", "last_heartbeat"))
            and _numbers(status, ("leader_count", "region_count")))

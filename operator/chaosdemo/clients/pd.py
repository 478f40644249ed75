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

    async def _get(self, path: str) -> Any:
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
            return resp.json()
        except ValueError as e:
            raise PDUnavailable(f"PD at {self.base_url} sent non-JSON for {path}") from e

    async def stores(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._get("/pd/api/v1/stores")
        return result

    async def health(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._get("/pd/api/v1/health")
        return result

    async def members(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._get("/pd/api/v1/members")
        return result

    async def replication(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._get("/pd/api/v1/config/replicate")
        return result

    async def region_check(self, check: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._get(f"/pd/api/v1/regions/check/{check}")
        return result

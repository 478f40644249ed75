"""ChaosDemo objects: read one, list them all, and merge-patch one's status subresource."""

from __future__ import annotations

from typing import Any

from chaosdemo.api.models import API_GROUP, API_VERSION, KIND, PLURAL
from chaosdemo.clients.kube.transport import Transport

__all__ = ["Demos"]


class Demos:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.t.get_custom(API_GROUP, API_VERSION, PLURAL, namespace, name)

    async def list_all(self, page: int = 500, pages: int = 10) -> list[dict[str, Any]]:
        """Every namespace's ChaosDemos, ``page`` at a time, at most ``pages`` pages."""
        items: list[dict[str, Any]] = []
        token = None
        for _ in range(pages):
            kwargs: dict[str, Any] = {"limit": page, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            found = await self.t.read("ChaosDemos", self.t.custom.list_cluster_custom_object(
                API_GROUP, API_VERSION, PLURAL, **kwargs)) or {}
            items += found.get("items") or []
            token = (found.get("metadata") or {}).get("continue")
            if not token:
                break
        return items

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the demo's status; a demo deleted meanwhile is no error."""
        await self.t.patch_custom_status(API_GROUP, API_VERSION, PLURAL, KIND, namespace, name, status)

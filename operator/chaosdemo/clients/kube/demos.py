"""ChaosDemo objects: read one, and merge-patch its status subresource."""

from __future__ import annotations

from typing import Any

from chaosdemo.api.models import API_GROUP, API_VERSION, PLURAL
from chaosdemo.clients.kube.transport import MERGE, Transport, failed

__all__ = ["Demos"]


class Demos:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.t.get_custom(API_GROUP, API_VERSION, PLURAL, namespace, name)

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the demo's status; a demo deleted meanwhile is no error."""
        what = f"update status of ChaosDemo {namespace}/{name}"
        code, reason = await self.t.send(what, self.t.custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
            API_GROUP, API_VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE,
            _preload_content=False))
        if code != 404 and not 200 <= code <= 299:
            raise failed(what, code, reason)

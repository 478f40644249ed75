"""ChaosDemoSuites, and the ChaosDemos a suite owns: read, list by label, create, delete, patch status."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from chaosdemo.api.errors import Unavailable
from chaosdemo.api.models import API_GROUP, API_VERSION, PLURAL
from chaosdemo.api.suite import SUITE_KIND, SUITE_LABEL, SUITE_PLURAL
from chaosdemo.clients.kube.transport import Transport, failed

__all__ = ["Created", "Suites"]

Created = tuple[bool, str]  # (created or there already, why not: the API server's own message)


class Suites:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.t.get_custom(API_GROUP, API_VERSION, SUITE_PLURAL, namespace, name)

    async def demos_of(self, namespace: str, suite: str, uid: str) -> list[dict[str, Any]]:
        """The suite's demos: labelled with its name AND owned by its uid (a label anyone may write)."""
        found = await self.t.read(f"ChaosDemos of suite {namespace}/{suite}",
                                  self.t.custom.list_namespaced_custom_object(
                                      API_GROUP, API_VERSION, namespace, PLURAL,
                                      label_selector=f"{SUITE_LABEL}={suite}", limit=500,
                                      _preload_content=False)) or {}
        return [d for d in found.get("items") or []
                if any(o.get("uid") == uid and o.get("controller")
                       for o in (d.get("metadata") or {}).get("ownerReferences") or [])]

    async def create_demo(self, namespace: str, body: dict[str, Any]) -> Created:
        """Create one of the suite's demos; a refusal (admission, a name taken) is returned with its message."""
        name = body["metadata"]["name"]
        try:
            resp = await self.t.custom.create_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, body, _preload_content=False)
        except ApiException as e:
            if e.status in (400, 403, 409, 422):
                return False, _message(e.body, f"HTTP {e.status} {e.reason}")
            raise failed(f"create ChaosDemo {namespace}/{name}", e.status, e.reason) from e
        except aiohttp.ClientError as e:
            raise Unavailable(f"Kubernetes API failed to create ChaosDemo {namespace}/{name}: {e!r}",
                              reason="KubeAPIError") from e
        async with resp:
            text = await resp.read()
            if 200 <= resp.status <= 299:
                return True, ""
            if resp.status in (400, 403, 409, 422):
                return False, _message(text, f"HTTP {resp.status} {resp.reason}")
            raise failed(f"create ChaosDemo {namespace}/{name}", resp.status, resp.reason)

    async def delete_demo(self, namespace: str, name: str) -> None:
        """Delete a demo of an old run (its finalizer cleans up as for any demo); one gone already is no error."""
        code, reason = await self.t.send(f"delete ChaosDemo {namespace}/{name}",
                                         self.t.custom.delete_namespaced_custom_object(
                                             API_GROUP, API_VERSION, namespace, PLURAL, name,
                                             _preload_content=False))
        if code != 404 and not 200 <= code <= 299:
            raise failed(f"delete ChaosDemo {namespace}/{name}", code, reason)

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the suite's status; a suite deleted meanwhile is no error."""
        await self.t.patch_custom_status(API_GROUP, API_VERSION, SUITE_PLURAL, SUITE_KIND, namespace, name, status)


def _message(body: Any, fallback: str) -> str:
    """The ``message`` of a Kubernetes Status body, bounded."""
    try:
        obj = json.loads(body) if isinstance(body, str | bytes) else body
        return str(obj.get("message") or fallback)[:500]
    except (ValueError, AttributeError):
        return fallback

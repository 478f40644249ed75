"""The operator's own ledger of faults it must undo: one ConfigMap in its namespace, one key per demo.

Written before a fault that must be undone (node-kill) is injected and cleared once it is undone, so a
node is started again even when its ChaosDemo, finalizer and all, is gone. Only the operator writes it
(a Role on this one ConfigMap in its own namespace); updates carry the resourceVersion they read.
"""

from __future__ import annotations

from kubernetes_asyncio import client

from chaosdemo.api.errors import Unavailable
from chaosdemo.clients.kube.transport import MANAGED_BY, Transport

__all__ = ["LEDGER", "Ledger"]

LEDGER = "chaosdemo-undo-ledger"
_ATTEMPTS = 5


class Ledger:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    async def _read(self, namespace: str) -> client.V1ConfigMap | None:
        found: client.V1ConfigMap | None = await self.t.call(
            f"read ConfigMap {namespace}/{LEDGER}", self.t.core.read_namespaced_config_map(LEDGER, namespace))
        return found

    async def entries(self, namespace: str) -> dict[str, str]:
        found = await self._read(namespace)
        return dict((found.data if found else None) or {})

    async def put(self, namespace: str, key: str, value: str) -> None:
        await self._change(namespace, key, value)

    async def drop(self, namespace: str, key: str) -> None:
        await self._change(namespace, key, None)

    async def _change(self, namespace: str, key: str, value: str | None) -> None:
        what = f"write ConfigMap {namespace}/{LEDGER}"
        for _ in range(_ATTEMPTS):
            found = await self._read(namespace)
            data = dict((found.data if found else None) or {})
            if data.get(key) == value:
                return
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            if found is None:
                body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=LEDGER, labels=dict(MANAGED_BY)),
                                          data=data)
                done = await self.t.call(what, self.t.core.create_namespaced_config_map(namespace, body),
                                         absent=(409,))
            else:
                found.data = data  # replaced with the resourceVersion it was read with
                done = await self.t.call(what, self.t.core.replace_namespaced_config_map(LEDGER, namespace, found),
                                         absent=(409,))
            if done is not None:
                return
        raise Unavailable(f"{what}: it kept changing under {_ATTEMPTS} attempts", reason="KubeAPIError")

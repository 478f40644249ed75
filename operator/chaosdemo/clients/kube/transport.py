"""The connection to the API server, shared by every concern: how a call is made, read and refused.

Reads that a watch makes at every look, and writes whose answer nothing reads, take the API server's
JSON as it is (``_preload_content=False``) instead of building the client's model objects (every
timestamp through dateutil) and turning them back into dicts: for a list of 3 pods that was 8.7 ms
of CPU against 2.5 ms, on the one event loop every demo shares. A status patch answers with the
whole ChaosDemo, a pod DELETE with the whole pod: neither is decoded.

API errors other than "not found" (None) and "conflict" become ``Unavailable`` (worth a retry).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from chaosdemo import __version__
from chaosdemo.api.errors import Forbidden, Unavailable

__all__ = ["MANAGED_BY", "MERGE", "USER_AGENT", "Transport", "connect"]

MERGE = "application/merge-patch+json"
USER_AGENT = f"chaosdemo-operator/{__version__}"
MANAGED_BY = {"app.kubernetes.io/managed-by": "chaosdemo"}
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
T = TypeVar("T")


def _no_netrc_lookup(api: client.ApiClient) -> None:
    """Skip aiohttp's ~/.netrc lookup on every request unless a proxy is set in the environment.

    kubernetes_asyncio opens its session with ``trust_env=True``, for the proxy variables. With it,
    aiohttp also looks up basic-auth credentials in ~/.netrc for every request, through the thread
    pool: a hop out of the event loop and back on each call to the API server, which the API
    server's credentials (token or client certificate, from the kubeconfig or the ServiceAccount)
    never need. Without proxy variables there is nothing else that ``trust_env`` brings.
    """
    if any(os.environ.get(v) for v in PROXY_VARIABLES):
        return
    session = getattr(api.rest_client, "pool_manager", None)
    if isinstance(session, aiohttp.ClientSession) and hasattr(session, "_trust_env"):
        session._trust_env = False


async def connect(kubeconfig: str | None = None) -> client.ApiClient:
    """In a pod, the ServiceAccount; elsewhere the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    api = client.ApiClient(configuration=cfg)
    # The API server's audit log names each client by its user agent: ours says who acted, where the
    # client library's default (OpenAPI-Generator/...) is shared by every program built on it.
    api.user_agent = USER_AGENT
    _no_netrc_lookup(api)
    return api


def failed(what: str, status: int | None, reason: str | None) -> Unavailable:
    if status == 403:
        return Forbidden(f"Kubernetes API refused to let the operator {what}: HTTP 403 {reason}", reason="Forbidden")
    return Unavailable(f"Kubernetes API failed to {what}: HTTP {status} {reason}", reason="KubeAPIError")


class Transport:
    """One API client, and the three ways a call goes: read JSON, send and forget, or a typed call."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.coord = client.CoordinationV1Api(api)

    async def call(self, what: str, call: Awaitable[T], *, absent: tuple[int, ...] = (404,)) -> T | None:
        """The answer of a typed call, or None when the API server answers one of ``absent``."""
        try:
            return await call
        except ApiException as e:
            if e.status in absent:
                return None
            raise failed(what, e.status, e.reason) from e

    async def read(self, what: str, call: Awaitable[Any]) -> dict[str, Any] | None:
        """The JSON object of a ``_preload_content=False`` call, or None if it does not exist."""
        try:
            resp = await call
        except ApiException as e:  # raised before an answer: connection or TLS trouble
            raise failed(f"read {what}", e.status, e.reason) from e
        except aiohttp.ClientError as e:
            raise Unavailable(f"Kubernetes API failed to read {what}: {e!r}", reason="KubeAPIError") from e
        async with resp:
            if resp.status == 404:
                return None
            if not 200 <= resp.status <= 299:
                raise failed(f"read {what}", resp.status, resp.reason)
            try:
                obj = json.loads(await resp.read())
            except (aiohttp.ClientError, ValueError) as e:
                raise Unavailable(f"Kubernetes API sent no JSON object for {what}: {e!r}",
                                  reason="KubeAPIError") from e
        if not isinstance(obj, dict):
            raise Unavailable(f"Kubernetes API sent no JSON object for {what}", reason="KubeAPIError")
        return obj

    async def send(self, what: str, call: Awaitable[Any]) -> tuple[int, str]:
        """(HTTP status, reason) of a ``_preload_content=False`` write whose answer is not needed.

        The body is read (so the connection goes back to the pool) but never decoded.
        """
        try:
            resp = await call
        except ApiException as e:
            raise failed(what, e.status, e.reason) from e
        except aiohttp.ClientError as e:
            raise Unavailable(f"Kubernetes API failed to {what}: {e!r}", reason="KubeAPIError") from e
        async with resp:
            await resp.read()
            return resp.status, str(resp.reason or "")

    async def patch_custom_status(self, group: str, version: str, plural: str, kind: str, namespace: str, name: str,
                                  status: dict[str, Any]) -> None:
        """Merge ``status`` into an object's status subresource; one deleted meanwhile is no error."""
        what = f"update status of {kind} {namespace}/{name}"
        code, reason = await self.send(what, self.custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
            group, version, namespace, plural, name, {"status": status}, _content_type=MERGE,
            _preload_content=False))
        if code != 404 and not 200 <= code <= 299:
            raise failed(what, code, reason)

    async def get_custom(self, group: str, version: str, plural: str, namespace: str,
                         name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self.call(
            f"read {plural} {namespace}/{name}",
            self.custom.get_namespaced_custom_object(group, version, namespace, plural, name))
        return found

"""Kubernetes Events: the ones a demo posts on itself, and the target namespace's, read for the evidence."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from kubernetes_asyncio import client

from chaosdemo.api.models import API_GROUP, API_VERSION, EVENT_SOURCE, KIND, REPORTING_COMPONENT
from chaosdemo.clients.kube.transport import Transport
from chaosdemo.core.kube_events import NewestEvents

__all__ = ["EVENTS_PAGE", "Events"]

EVENTS_PAGE = 500
MAX_PAGES = 20  # 10,000 Events: an hour of a busy namespace


class Events:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    async def post(self, demo: dict[str, Any], type_: str, reason: str, message: str, *, kind: str = KIND) -> None:
        """Post an Event on a ChaosDemo (or a ChaosDemoSuite: ``kind``). Best effort: the status is the record,
        a refused Event is dropped.

        Named ``<demo>.<nanoseconds, hex>`` as the kubelet names its own: the API server lists Events by
        name, and ``kubectl describe`` keeps that order among Events of the same second (it sorts by
        lastTimestamp, whole seconds), so the story reads in the order it happened. eventTime carries
        the microseconds for readers that use them."""
        meta = demo.get("metadata", {})
        ns = time.time_ns()
        now = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
        ev = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{str(meta.get('name', 'chaosdemo'))[:230]}.{ns:x}"),
            involved_object=client.V1ObjectReference(
                api_version=f"{API_GROUP}/{API_VERSION}", kind=kind, name=meta.get("name"),
                namespace=meta.get("namespace"), uid=meta.get("uid"),
            ),
            type=type_, reason=reason, message=message[:1024], first_timestamp=now, last_timestamp=now, count=1,
            event_time=now, action=reason, source=client.V1EventSource(component=EVENT_SOURCE),
            reporting_component=REPORTING_COMPONENT, reporting_instance=EVENT_SOURCE,
        )
        await self.t.send(f"post an event on {kind} {meta.get('namespace')}/{meta.get('name')}",
                          self.t.core.create_namespaced_event(meta.get("namespace"), ev, _preload_content=False))

    async def newest(self, namespace: str, cluster: str, *, since: float, keep: int,
                     page: int = EVENTS_PAGE) -> list[dict[str, Any]]:
        """The newest ``keep`` Events about the TidbCluster's own objects in the namespace at or after
        ``since`` (epoch seconds), oldest first.

        Read ``page`` at a time: a namespace keeps an hour of Events, thousands after a busy hour,
        and every demo's diagnosis reads them at about the same moment. Measured on 2,460 Events
        (3 MB of JSON, nine rounds of 30 demos): one list peaked at 15.6 MiB of Python objects,
        pages of 500 at 5.5 MiB, for the same CPU (about 0.2 s).
        """
        newest, token = NewestEvents(since, keep, cluster), None
        for _ in range(MAX_PAGES):  # a namespace whose Events never end is read this far, and no further
            kwargs: dict[str, Any] = {"limit": page, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            found = await self.t.read(f"events in {namespace}", self.t.core.list_namespaced_event(namespace, **kwargs))
            newest.add((found or {}).get("items") or [])
            token = ((found or {}).get("metadata") or {}).get("continue")
            if not token:
                break
        return newest.result()

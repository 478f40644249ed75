"""The Kubernetes Events a diagnosis may read: the newest ones about the TidbCluster's own objects (pure).

Fed one page of the API server's list at a time, so a namespace's long history of Events is never held
at once; any Event about another team's objects is not evidence, and is not sent.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable
from typing import Any

from chaosdemo.api.timestamps import parse_iso

__all__ = ["NewestEvents", "about_cluster"]


def about_cluster(cluster: str) -> Callable[[dict[str, Any]], bool]:
    """Whether an Event's involvedObject is one of the TidbCluster's own: its TiKV, PD and TiDB pods and
    StatefulSets, the TidbCluster, or a node. Any other Event of the namespace (another team's app,
    another cluster) is not the evidence, and is not sent."""
    member = re.compile(rf"{re.escape(cluster)}-(tikv|pd|tidb)(-\d+)?")

    def about(obj: dict[str, Any]) -> bool:
        kind, name = str(obj.get("kind", "")), str(obj.get("name", ""))
        return (kind == "Node" or (kind == "TidbCluster" and name == cluster)
                or (kind in ("Pod", "StatefulSet") and member.fullmatch(name) is not None))
    return about


class NewestEvents:
    """The newest ``keep`` Kubernetes Events at or after ``since``, summarized, fed one page of the
    API server's list at a time: a namespace's long history of Events is never held at once."""

    def __init__(self, since: float, keep: int, cluster: str) -> None:
        self.since, self.keep, self.about = since, max(0, keep), about_cluster(cluster)
        self._heap: list[tuple[float, int, dict[str, Any]]] = []  # the oldest kept first
        self._seen = 0

    def add(self, items: Iterable[dict[str, Any]]) -> None:
        for ev in items:
            obj, meta = ev.get("involvedObject") or {}, ev.get("metadata") or {}
            when = (ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp")
                    or meta.get("creationTimestamp") or "")
            try:
                at = parse_iso(str(when))
            except ValueError:
                continue
            if at < self.since or not self.keep or not self.about(obj):
                continue
            self._seen += 1
            entry = (at, self._seen, {"time": when, "type": ev.get("type", ""), "reason": ev.get("reason", ""),
                                      "object": f"{obj.get('kind', '')}/{obj.get('name', '')}",
                                      "message": ev.get("message", ""), "count": ev.get("count", 1)})
            if len(self._heap) < self.keep:
                heapq.heappush(self._heap, entry)
            else:
                heapq.heappushpop(self._heap, entry)

    def result(self) -> list[dict[str, Any]]:
        """The events kept, oldest first."""
        return [e[2] for e in sorted(self._heap)]

"""The diagnosis keeps the newest Events since the demo started, reading the namespace page by page."""

from __future__ import annotations

import inspect
from typing import Any

from chaosdemo.api.timestamps import iso, parse_iso
from chaosdemo.core.kube_events import NewestEvents

T0 = parse_iso("2026-12-02T07:00:00.000Z")


def event(name: str, at: float, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "involvedObject": {"kind": "Node", "name": name}, "type": "Normal",
            "reason": "Killing", "message": f"about {name}", "lastTimestamp": iso(at), **extra}


def test_keeps_the_newest_since_the_start_across_pages_oldest_first() -> None:
    newest = NewestEvents(since=T0, keep=3, cluster="basic")
    # The API server lists by name, not by time: the pages arrive in no useful order.
    newest.add([event("e5", T0 + 5), event("old", T0 - 60), event("e1", T0 + 1)])
    newest.add([event("e3", T0 + 3), event("e9", T0 + 9)])
    newest.add([event("e7", T0 + 7)])
    got = newest.result()
    assert [e["object"] for e in got] == ["Node/e5", "Node/e7", "Node/e9"]
    assert got[0] == {"time": iso(T0 + 5), "type": "Normal", "reason": "Killing", "object": "Node/e5",
                      "message": "about e5", "count": 1}


def test_falls_back_through_the_time_fields_and_skips_events_without_one() -> None:
    newest = NewestEvents(since=T0, keep=10, cluster="basic")
    newest.add([
        {**event("series", 0), "lastTimestamp": None, "eventTime": "2026-12-02T07:00:02.123456Z"},
        {**event("first", 0), "lastTimestamp": None, "firstTimestamp": iso(T0 + 1)},
        {**event("created", 0), "lastTimestamp": None, "metadata": {"creationTimestamp": iso(T0 + 3)}},
        {**event("timeless", 0), "lastTimestamp": None},
        {**event("garbled", 0), "lastTimestamp": "yesterday"},
    ])
    assert [e["object"] for e in newest.result()] == ["Node/first", "Node/series", "Node/created"]


def test_keep_zero_keeps_nothing() -> None:
    newest = NewestEvents(since=T0, keep=0, cluster="basic")
    newest.add([event("e1", T0 + 1)])
    assert newest.result() == []


def test_the_watch_handlers_run_on_the_event_loop() -> None:
    # kopf runs a plain function in a thread pool: the journal would be touched from outside the loop
    # (its asyncio.Events are not thread-safe) and every event timed after a hop through the pool.
    from chaosdemo.edge import handlers

    for fn in (handlers.tikv_pod_event, handlers.tikv_statefulset_event, handlers.node_event):
        assert inspect.iscoroutinefunction(fn), fn.__name__

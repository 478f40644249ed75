"""The watch journal: what it keeps, and whom an event wakes (real asyncio, no processes)."""

import asyncio

from chaosdemo.core.journal import WatchJournal, cluster_subject, node_subject


def pod(name: str, cluster: str, namespace: str = "tidb") -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "labels": {"app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": cluster}},
            "spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}}


async def woken(journal: WatchJournal, subjects: list[tuple[str, str, str]], poke: object) -> bool:
    """Start a wait on ``subjects``, run ``poke`` once it is waiting, and say whether the wait was woken."""
    waiter = asyncio.create_task(journal.wait(0.3, subjects))
    await asyncio.sleep(0)  # the waiter registers
    poke()  # type: ignore[operator]
    return await waiter


async def test_a_pod_event_wakes_only_the_demos_on_its_cluster() -> None:
    j = WatchJournal()
    with j.following("tidb", "a"), j.following("tidb", "b"):
        loop = asyncio.get_running_loop()
        t = loop.time()
        assert not await woken(j, [cluster_subject("tidb", "a")], lambda: j.pod_event("DELETED", pod("b-tikv-0", "b")))
        assert loop.time() - t >= 0.25  # it waited out its poll interval
        assert await woken(j, [cluster_subject("tidb", "a")], lambda: j.pod_event("DELETED", pod("a-tikv-0", "a")))
        # The same name in another namespace is another cluster.
        assert not await woken(j, [cluster_subject("tidb", "a")],
                               lambda: j.pod_event("DELETED", pod("a-tikv-0", "a", namespace="other")))


async def test_node_and_statefulset_events_wake_their_subjects() -> None:
    j = WatchJournal()
    subjects = [cluster_subject("tidb", "a"), node_subject("node-1")]
    assert await woken(j, subjects, lambda: j.node_event("MODIFIED", {"metadata": {"name": "node-1"}}))
    assert not await woken(j, subjects, lambda: j.node_event("MODIFIED", {"metadata": {"name": "node-2"}}))
    sts = {"metadata": {"namespace": "tidb", "name": "a-tikv", "labels": {"app.kubernetes.io/instance": "a"}}}
    assert await woken(j, subjects, lambda: j.statefulset_event("MODIFIED", sts))


async def test_waiters_are_forgotten_once_they_return() -> None:
    j = WatchJournal()
    await woken(j, [node_subject("node-1")], lambda: None)
    await woken(j, [node_subject("node-1")], lambda: j.node_event("MODIFIED", {"metadata": {"name": "node-1"}}))
    assert j._waiters == {}


def test_events_are_kept_only_while_a_demo_follows_the_cluster() -> None:
    j = WatchJournal(limit=3)
    j.pod_event("ADDED", pod("a-tikv-0", "a"))  # nobody follows: dropped
    with j.following("tidb", "a"):
        cursor = j.cursor()
        for i in range(5):
            j.pod_event("MODIFIED", pod(f"a-tikv-{i}", "a"))
        j.pod_event("MODIFIED", pod("b-tikv-0", "b"))
        with j.following("tidb", "a"):  # a second demo on the same cluster
            pass
        events, new_cursor = j.pod_events_since(cursor, "tidb", "a")
        assert [e.pod.name for e in events] == ["a-tikv-2", "a-tikv-3", "a-tikv-4"]  # the last 3 (limit)
        assert j.pod_events_since(new_cursor, "tidb", "a")[0] == []
        assert all(e.instance == "a" and e.namespace == "tidb" for e in events)
        assert j.pod_events_since(cursor, "tidb", "b")[0] == []
    assert j.pod_events_since(0, "tidb", "a")[0] == []
    assert j._pods == {} and j._followers == {}


async def test_a_look_reads_a_node_once_then_follows_its_watch_events() -> None:
    now = [1000.0]
    j = WatchJournal(clock=lambda: now[0])
    gets: list[str] = []

    async def get() -> dict[str, object]:
        gets.append("node-1")
        return {"metadata": {"name": "node-1"}, "status": {"n": len(gets)}}

    subject = node_subject("node-1")
    j.node_event("MODIFIED", {"metadata": {"name": "node-1"}, "status": {"n": -1}})  # never read: not kept
    assert (await j.read(subject, 30, get))["status"] == {"n": 1}
    assert (await j.read(subject, 30, get))["status"] == {"n": 1} and gets == ["node-1"]  # from the cache
    j.node_event("MODIFIED", {"metadata": {"name": "node-1"}, "status": {"n": 99}})
    assert (await j.read(subject, 30, get))["status"] == {"n": 99}  # the event's object
    now[0] += 31  # no event for longer than max_age: read again
    assert (await j.read(subject, 30, get))["status"] == {"n": 2}
    j.node_event("DELETED", {"metadata": {"name": "node-1"}})
    assert await j.read(subject, 30, get) is None and len(gets) == 2  # known to be gone


async def test_an_event_during_a_look_wakes_the_next_wait() -> None:
    j = WatchJournal()
    with j.following("tidb", "a"), j.wakeup([cluster_subject("tidb", "a")]) as wake:
        wake.clear()
        j.pod_event("DELETED", pod("a-tikv-0", "a"))  # arrives while the demo is still looking
        loop = asyncio.get_running_loop()
        t = loop.time()
        assert await wake.wait(5)
        assert loop.time() - t < 0.1
        wake.clear()  # the next look has read it
        assert not await wake.wait(0.05)


async def test_a_paced_wait_returns_no_sooner_than_asked_and_still_reports_the_event() -> None:
    j = WatchJournal()
    with j.wakeup([node_subject("node-1")]) as wake:
        wake.clear()
        j.node_event("MODIFIED", {"metadata": {"name": "node-1"}})
        loop = asyncio.get_running_loop()
        t = loop.time()
        assert await wake.wait(5, not_before=0.2)
        assert 0.19 <= loop.time() - t < 1


async def test_a_wakeup_follows_its_subjects_and_is_forgotten_at_the_end() -> None:
    j = WatchJournal()
    with j.wakeup([node_subject("node-1")]) as wake:
        wake.watch([node_subject("node-2")])
        wake.clear()
        j.node_event("MODIFIED", {"metadata": {"name": "node-1"}})
        assert not await wake.wait(0.05)
        j.node_event("MODIFIED", {"metadata": {"name": "node-2"}})
        assert await wake.wait(0.05)
    assert j._waiters == {}

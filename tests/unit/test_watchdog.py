"""A demo kopf cannot handle is reported, never silently stuck (issue 30): the pure judgement, and the round
that posts it once per demo with in-memory STAND-INS for the API server's list and Events."""

import asyncio
from types import SimpleNamespace

from chaosdemo.api.settings import Settings
from chaosdemo.api.timestamps import iso
from chaosdemo.clients.metrics import Metrics
from chaosdemo.core.watchdog import stuck
from chaosdemo.run.deps import Deps
from chaosdemo.service.watchdog import Watchdog

from .helpers import NOW

FIN = "chaosdemo.dev/finalizer"


def demo(name: str = "d", *, created: float = -600, deleting: float | None = None, conditions: bool = True,
         finalizers: tuple[str, ...] = (FIN,)) -> dict:
    meta = {"name": name, "namespace": "t", "uid": f"uid-{name}", "creationTimestamp": iso(NOW + created),
            "finalizers": list(finalizers)}
    if deleting is not None:
        meta["deletionTimestamp"] = iso(NOW + deleting)
    return {"metadata": meta, "status": {"conditions": [{"type": "Succeeded"}]} if conditions else {}}


def test_a_deletion_the_handler_has_not_finished_long_after_it_was_asked_is_stuck() -> None:
    assert "being deleted for 400s" in stuck(demo(deleting=-400), NOW, FIN, grace=300)
    assert stuck(demo(deleting=-100), NOW, FIN, grace=300) == "", "still within the grace"
    assert stuck(demo(deleting=-400, finalizers=("other",)), NOW, FIN, grace=300) == "", "not ours to finish"


def test_a_demo_never_taken_up_is_stuck_and_one_that_was_is_not() -> None:
    assert "not taken up by the operator 600s" in stuck(demo(conditions=False), NOW, FIN, grace=300)
    assert stuck(demo(conditions=False, created=-10), NOW, FIN, grace=300) == ""
    assert stuck(demo(), NOW, FIN, grace=300) == ""
    assert stuck({"metadata": {"deletionTimestamp": "not a time"}}, NOW, FIN) == "", "garbage is not a claim"


def test_each_stuck_demo_is_told_once_on_itself_and_counted_every_round() -> None:
    posted: list[tuple[str, str, str]] = []
    demos = [demo("gone", deleting=-400), demo("new", conditions=False), demo("fine")]

    async def list_all() -> list[dict]:
        return demos

    async def post(body: dict, type_: str, reason: str, message: str) -> None:
        posted.append((body["metadata"]["name"], type_, reason))

    metrics = Metrics()
    kube = SimpleNamespace(demos=SimpleNamespace(list_all=list_all), events=SimpleNamespace(post=post))
    deps = Deps(kube=kube, settings=Settings(stuck_seconds=300), clock=lambda: NOW, metrics=metrics)  # type: ignore[arg-type]
    dog = Watchdog(deps, FIN)
    assert len(asyncio.run(dog.look())) == 2
    assert len(asyncio.run(dog.look())) == 2
    assert posted == [("gone", "Warning", "Stuck"), ("new", "Warning", "Stuck")], "once per demo and reason"
    assert metrics.registry.get_sample_value("chaosdemo_demos_stuck") == 2


def test_a_demo_outside_the_namespaces_the_operator_serves_is_not_its_to_report() -> None:
    posted: list[str] = []
    other = {**demo("elsewhere", conditions=False), "metadata": {**demo("elsewhere")["metadata"], "namespace": "x"}}

    async def list_all() -> list[dict]:
        return [other, demo("mine", conditions=False)]

    async def post(body: dict, type_: str, reason: str, message: str) -> None:
        posted.append(body["metadata"]["name"])

    kube = SimpleNamespace(demos=SimpleNamespace(list_all=list_all), events=SimpleNamespace(post=post))
    deps = Deps(kube=kube, settings=Settings(), clock=lambda: NOW)  # type: ignore[arg-type]
    assert len(asyncio.run(Watchdog(deps, FIN, ("t",)).look())) == 1 and posted == ["mine"]

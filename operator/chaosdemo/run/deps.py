"""Everything a run talks to, created at the edge (``edge/wiring.py``) and injected."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

from chaosdemo.api.settings import Settings
from chaosdemo.clients.docker import DockerClient
from chaosdemo.clients.kube import KubeClient
from chaosdemo.clients.metrics import Metrics
from chaosdemo.clients.sql import SqlPool, SqlTarget
from chaosdemo.core.journal import WatchJournal
from chaosdemo.run.crashpoints import never
from chaosdemo.run.faults import FaultFactory, fault_for

if TYPE_CHECKING:  # the SDK is imported only when a key is set (wiring)
    from chaosdemo.clients.claude import ClaudeDiagnoser

__all__ = ["Deps"]


@dataclass
class Deps:
    """Everything a run talks to, created at the edge and injected."""

    kube: KubeClient
    settings: Settings
    journal: WatchJournal = field(default_factory=WatchJournal)
    claude: ClaudeDiagnoser | None = None
    docker: DockerClient | None = None
    pd_session: aiohttp.ClientSession | None = None  # shared by every demo's PDClient; None: one per demo
    faults: FaultFactory = fault_for
    clock: Callable[[], float] = time.time
    crash: Callable[[str], None] = never  # crashpoints: testing only
    metrics: Metrics = field(default_factory=Metrics)
    sql: Callable[[SqlTarget, int, float], SqlPool] = lambda target, size, timeout: SqlPool(  # the SQL canary's
        target, size=size, timeout=timeout)

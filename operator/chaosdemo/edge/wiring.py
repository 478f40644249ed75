"""The edge: create the real clients from the settings, once, at operator startup."""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

from chaosdemo.api.settings import Settings
from chaosdemo.clients.docker import DockerClient
from chaosdemo.clients.kube import KubeClient
from chaosdemo.clients.metrics import Metrics
from chaosdemo.clients.pd import pd_session
from chaosdemo.run.crashpoints import crasher
from chaosdemo.run.deps import Deps
from chaosdemo.service.leadership import Leadership, Timing

if TYPE_CHECKING:
    from chaosdemo.clients.claude import ClaudeDiagnoser

__all__ = ["build_deps", "build_leadership", "claude_from", "close_deps"]


def claude_from(settings: Settings, metrics: Metrics) -> ClaudeDiagnoser | None:
    """Claude's client when a key is set, else None (the rules engine answers)."""
    if settings.anthropic_api_key is None:
        return None
    # Imported only when a key is set: the SDK is about a third of the operator's memory.
    import anthropic

    from chaosdemo.clients.claude import ClaudeDiagnoser

    return ClaudeDiagnoser(
        anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            timeout=settings.claude_timeout_seconds,
            max_retries=settings.claude_max_retries,
        ),
        max_tokens=settings.claude_max_tokens,
        metrics=metrics,
    )


async def build_deps(settings: Settings, kubeconfig: str | None = None) -> Deps:
    kube = await KubeClient.connect(kubeconfig)
    metrics = Metrics()
    claude = claude_from(settings, metrics)
    # Docker is reached lazily: pod faults never need it, and its absence only
    # aborts the Docker-level faults, with the reason.
    return Deps(kube=kube, settings=settings, claude=claude, docker=DockerClient(settings.docker_host),
                pd_session=pd_session(), crash=crasher(settings.crash_at), metrics=metrics)


def build_leadership(settings: Settings, kube: KubeClient, metrics: Metrics) -> Leadership | None:
    if not settings.leader_election:
        metrics.leader.set(1)
        return None
    identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return Leadership(kube, settings.leader_namespace, identity, Timing.for_lease(settings.leader_lease_seconds),
                      on_change=lambda leading: metrics.leader.set(1 if leading else 0))


async def close_deps(deps: Deps) -> None:
    if deps.claude is not None:
        await deps.claude.aclose()
    if deps.docker is not None:
        await deps.docker.aclose()
    if deps.pd_session is not None:
        await deps.pd_session.close()
    await deps.kube.aclose()

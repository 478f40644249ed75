"""Docker, for the faults that go through kind's node containers.

Reached through aiodocker at DOCKER_HOST (or the default socket), with the API
version negotiated with the engine. Every call first makes sure the container
is a kind node (kind's ``io.x-k8s.kind.cluster`` label): the operator never
kills a container it cannot prove is a node. An engine that does not answer
is ``DockerUnavailable``; a container that is missing or not a kind node is
``NotAKindNode``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiodocker
import aiohttp

from chaosdemo.api.errors import DockerUnavailable, NotAKindNode

__all__ = ["KIND_CLUSTER_LABEL", "ContainerState", "DockerClient"]

KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"


EXEC_SECONDS = 30.0  # a script in a node: the fault scripts take milliseconds
EXEC_OUTPUT = 64 * 1024  # bytes of an exec's output kept


@dataclass(frozen=True)
class ContainerState:
    name: str
    running: bool
    started_at: str
    finished_at: str
    exit_code: int


class DockerClient:
    def __init__(self, url: str | None = None, *, exec_seconds: float = EXEC_SECONDS) -> None:
        self.url, self.exec_seconds = url, exec_seconds
        self._docker: aiodocker.Docker | None = None

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            try:
                self._docker = aiodocker.Docker(url=self.url)
            except (ValueError, OSError) as e:
                raise DockerUnavailable(f"no Docker engine at {self.url or 'the default socket'}: {e}") from e
        return self._docker

    async def aclose(self) -> None:
        if self._docker is not None:
            await self._docker.close()

    async def _inspect(self, name: str) -> dict[str, Any]:
        try:
            info: dict[str, Any] = await self._client().containers.container(name).show()
            return info
        except aiodocker.DockerError as e:
            if e.status == 404:
                raise NotAKindNode(
                    f"no Docker container named {name}: the node is not a kind node reachable through "
                    f"{self.url or 'the default Docker socket'}",
                    reason="NodeContainerNotFound",
                ) from e
            raise DockerUnavailable(f"Docker refused to inspect {name}: {e}") from e
        except (aiohttp.ClientError, OSError) as e:
            raise DockerUnavailable(f"Docker at {self.url or 'the default socket'} is not reachable: {e}") from e

    async def kind_node(self, name: str) -> ContainerState:
        """The state of the kind node container ``name``; refuses any other container."""
        info = await self._inspect(name)
        labels = (info.get("Config") or {}).get("Labels") or {}
        if KIND_CLUSTER_LABEL not in labels:
            raise NotAKindNode(
                f"container {name} is not a kind node (no {KIND_CLUSTER_LABEL} label); refusing to touch it",
                reason="NotAKindNode",
            )
        state = info.get("State") or {}
        return ContainerState(
            name=name,
            running=bool(state.get("Running")),
            started_at=str(state.get("StartedAt", "")),
            finished_at=str(state.get("FinishedAt", "")),
            exit_code=int(state.get("ExitCode", 0)),
        )

    async def kill(self, name: str, signal: str = "SIGKILL") -> None:
        await self.kind_node(name)
        try:
            await self._client().containers.container(name).kill(signal=signal)
        except aiodocker.DockerError as e:
            raise DockerUnavailable(f"docker kill {name} failed: {e}") from e

    async def start(self, name: str) -> None:
        await self.kind_node(name)
        try:
            await self._client().containers.container(name).start()
        except aiodocker.DockerError as e:
            raise DockerUnavailable(f"docker start {name} failed: {e}") from e

    async def exec(self, name: str, cmd: list[str]) -> tuple[int, str]:
        """Run ``cmd`` inside the kind node container; (exit code, output, at most ``EXEC_OUTPUT`` bytes).

        A node that does not finish within ``exec_seconds`` (wedged, or its runtime hung) is
        DockerUnavailable: the undo that asked is tried again later, never waited on for ever.
        """
        await self.kind_node(name)
        try:
            async with asyncio.timeout(self.exec_seconds):
                container = self._client().containers.container(name)
                ex = await container.exec(cmd, stdout=True, stderr=True)
                async with ex.start(detach=False) as stream:
                    chunks, size = [], 0
                    while (msg := await stream.read_out()) is not None:
                        if size < EXEC_OUTPUT:
                            chunks.append(msg.data[: EXEC_OUTPUT - size].decode(errors="replace"))
                            size += len(msg.data)
                code = (await ex.inspect()).get("ExitCode")
        except TimeoutError as e:
            raise DockerUnavailable(f"{' '.join(cmd[:2])} in {name} did not finish in {self.exec_seconds:g}s") from e
        except aiodocker.DockerError as e:
            # An exec of a binary the node lacks fails here, before any output.
            return 127, str(e)
        return int(code if code is not None else 1), "".join(chunks)

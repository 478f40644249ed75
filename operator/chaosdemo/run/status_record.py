"""The record of a demo: its status, written only as the story (``core/story.py``) tells it.

A run says what happened; the story gives the new status and the Events; this saves the one and posts
the others. Progress between looks may be kept unsaved (``save=False``) and saved later with ``save``.
Events go first and the status last: kopf stops the daemon as soon as it sees a terminal status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from chaosdemo.api.models import ChaosDemoStatus
from chaosdemo.api.timestamps import iso
from chaosdemo.clients.kube import KubeClient
from chaosdemo.core.story import Happening, Story, tell
from chaosdemo.run.crashpoints import never

__all__ = ["Record"]

log = logging.getLogger(__name__)


class Record:
    def __init__(self, kube: KubeClient, body: dict[str, Any], clock: Callable[[], float],
                 crash: Callable[[str], None] = never) -> None:
        meta = body["metadata"]
        self.kube, self.body, self.clock, self.crash = kube, body, clock, crash
        self.namespace, self.name = str(meta.get("namespace", "")), str(meta["name"])
        self.generation = int(meta.get("generation", 1))
        self._status = ChaosDemoStatus.model_validate(body.get("status") or {})
        self._lock = asyncio.Lock()

    @property
    def status(self) -> ChaosDemoStatus:
        """The status as last told (a value: a run reads it, never changes it)."""
        return self._status

    def now(self) -> str:
        return iso(self.clock())

    def told(self, happened: Happening) -> Story:
        """The story of ``happened``, taken as the status from now on (not yet saved or posted)."""
        story = tell(self._status, happened, now=self.now(), generation=self.generation)
        self._status = story.status
        return story

    async def publish(self, story: Story, *, save: bool = True) -> None:
        """Post the story's Events, then save: a crash between leaves an Event the status does not show yet,
        never a status whose Event is missing. An ending is always saved."""
        await self._post(story)
        if save or story.ended:
            await self.save()

    async def tell(self, happened: Happening, *, save: bool = True) -> Story:
        story = self.told(happened)
        await self.publish(story, save=save)
        return story

    async def save(self) -> None:
        async with self._lock:
            payload = self._status.model_dump(by_alias=True, exclude_none=True, mode="json")
            await self.kube.demos.patch_status(self.namespace, self.name, payload)
            phase = self._status.phase
        self.crash(phase)  # a crash point per phase, right after its status is written

    async def _post(self, story: Story) -> None:
        for note in story.events:
            log.info("%s/%s %s: %s", self.namespace, self.name, note.reason, note.message)
            await self.kube.events.post(self.body, note.type, note.reason, note.message)

"""Edits and deletions the watch heard and had not followed when Helix stopped, kept across the restart.

Discord sends each once. A catch-up after the restart pages the messages posted since the cursor,
not what happened to older ones: an edit or a deletion still queued at a deploy (behind a slow live
download, held while a rebuild runs, waiting to be tried again after a failure) would otherwise be
lost with the process, and a deletion lost leaves on the remote what a member deleted. A live
message needs no keeping: the cursor never moved past it, so the catch-up pages it again.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

import structlog

log = structlog.get_logger("helix.capture")
KEPT = ("edit", "delete")


class HeardKeeping:
    catalogue: Any
    _live: asyncio.Queue[tuple[str, Any]]
    _after_rebuild: deque[tuple[str, Any]]
    _follow_again: deque[tuple[str, Any]]

    async def keep_heard(self) -> int:
        """At a stop, once the watch's consumer has ended: what it had not followed, in the order heard."""
        events = [*self._after_rebuild, *self._follow_again]
        while not self._live.empty():
            events.append(self._live.get_nowait())
        kept = [(kind, json.dumps(list(payload))) for kind, payload in events if kind in KEPT]
        if kept:
            await self.catalogue.call("keep_heard", kept)
            log.info("capture_heard_kept", events=len(kept))
        return len(kept)

    async def follow_heard(self) -> int:
        """At a start, before anything new is heard: what the last stop kept goes first."""
        taken = await self.catalogue.call("take_heard")
        for kind, payload in taken:
            self._live.put_nowait((kind, tuple(json.loads(payload))))
        if taken:
            log.info("capture_heard_followed", events=len(taken))
        return len(taken)

"""Edits and deletions the watch heard, kept in the catalogue from the moment they arrive until followed.

Discord sends each once. A catch-up after a restart pages the messages posted since the cursor,
not what happened to older ones: an edit or a deletion still queued when the process ends (behind
a slow live download, held while a rebuild runs, waiting to be tried again after a failure) would
otherwise be lost with it, and a deletion lost leaves on the remote what a member deleted. So each
is written to the catalogue's ``heard`` as it is heard, before it is followed, and a crash loses
none of them; the next start follows what is there first. A row goes once its event was followed,
with the next rows written (or at a stop): one left behind is only followed again, which changes
nothing. A live message needs no keeping: the cursor never moved past it, so the catch-up pages it
again.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

import structlog

from catalogue import CatalogueError
from runtime.group_commit import GroupCommit

log = structlog.get_logger("helix.capture")
KEPT = ("edit", "delete")


class Heard(tuple):
    """An edit's or a deletion's payload as its handler takes it, and the ``heard`` row that keeps it
    (``seq``; None when the catalogue could not take it)."""

    seq: int | None = None


class HeardKeeping:
    catalogue: Any
    _live: asyncio.Queue[tuple[str, Any]]
    _after_rebuild: deque[tuple[str, Any]]
    _follow_again: deque[tuple[str, Any]]

    def _keep_heard_init(self) -> None:
        self._noting: set[asyncio.Task[None]] = set()  # edits and deletions on their way into ``heard``
        self._followed: list[int] = []  # their rows, once followed: deleted with the next rows written
        self._heard_rows: GroupCommit[tuple[str, str], int] = GroupCommit(self._write_heard)

    def _note(self, kind: str, payload: Any) -> None:
        """An edit or a deletion just heard: queued for the watch's consumer once its row is written.
        Rows written together share a commit; their events reach the queue in the order heard."""
        task = asyncio.create_task(self._noted(kind, payload))
        self._noting.add(task)
        task.add_done_callback(self._noting.discard)

    async def _noted(self, kind: str, payload: Any) -> None:
        heard = Heard(payload)
        try:
            heard.seq = await self._heard_rows.submit((kind, json.dumps(list(payload))))
        except CatalogueError as exc:  # followed all the same, only not kept against a crash
            log.warning("capture_heard_not_kept", kind=kind, error=str(exc))
        self._live.put_nowait((kind, heard))

    async def _write_heard(self, events: list[tuple[str, str]]) -> list[int]:
        followed, self._followed = self._followed, []
        try:
            return await self.catalogue.call("note_heard", events, followed)
        except BaseException:
            self._followed.extend(followed)
            raise

    def _heard_followed(self, payload: Any) -> None:
        """The event is followed for good: its row may go."""
        if getattr(payload, "seq", None) is not None:
            self._followed.append(payload.seq)
            payload.seq = None  # once: a number SQLite hands out again later may belong to another row

    async def keep_heard(self) -> int:
        """At a stop, once the watch's consumer has ended: the events whose rows could not be written
        (the others are kept already), and the rows of those followed deleted."""
        if self._noting:
            await asyncio.wait(set(self._noting))
        events = [*self._after_rebuild, *self._follow_again]
        while not self._live.empty():
            events.append(self._live.get_nowait())
        unkept = [(kind, json.dumps(list(payload))) for kind, payload in events
                  if kind in KEPT and getattr(payload, "seq", None) is None]
        followed, self._followed = self._followed, []
        await self.catalogue.call("note_heard", unkept, followed)
        if unkept:
            log.info("capture_heard_kept", events=len(unkept))
        return len(unkept)

    async def follow_heard(self) -> int:
        """At a start, before anything new is heard: what the catalogue kept goes first, oldest first.
        Rows stay until their events are followed, so a crash on the way only has them followed again."""
        self._followed = []  # of a catalogue closed since; this one keeps its rows until they are followed again
        rows = await self.catalogue.call("heard_rows")
        for seq, kind, payload in rows:
            heard = Heard(json.loads(payload))
            heard.seq = seq
            self._live.put_nowait((kind, heard))
        if rows:
            log.info("capture_heard_followed", events=len(rows))
        return len(rows)

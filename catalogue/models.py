"""What the catalogue hands back: plain, frozen rows (no SQLite objects leave its thread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChannelRow:
    id: int
    guild_id: int
    name: str
    topic: str | None
    type: str
    parent_id: int | None
    cursor: int  # every message with an id up to this one is archived
    watched: bool


@dataclass(frozen=True)
class BlobRow:
    sha256: str
    size: int
    path: str
    state: str  # queued | landed | doomed | deleted
    outbox_id: int | None


@dataclass(frozen=True)
class SegmentClaim:
    """A segment whose lines are fixed (committed) and whose files must be (re)written and uploaded."""

    id: int
    guild_id: int
    channel_id: int
    path: str
    transcript: str
    first_id: int
    last_id: int
    lines: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class SegmentRow:
    id: int
    path: str
    transcript: str
    first_id: int
    last_id: int
    records: int
    state: str
    sha256: str | None
    size: int | None


@dataclass(frozen=True)
class BackupRow:
    id: int
    guild_id: int
    channel_id: int
    threads: bool
    kind: str  # backup | catchup
    state: str  # running | done | cancelled | failed
    requested_by: int | None
    reply_channel_id: int | None
    reply_message_id: int | None
    scanned: int
    archived: int
    files: int
    bytes: int
    missing: int
    too_big: int
    error: str | None
    started_at: float
    finished_at: float | None


@dataclass(frozen=True)
class Deletion:
    """What deleting a message left to do on the remote."""

    known: bool  # the message was archived at all
    doomed_blobs: tuple[BlobRow, ...]  # no reference left: delete them from the remote
    dirty_segments: int  # segments that held its content and must be rewritten without it


@dataclass(frozen=True)
class Revision:
    """An edit recorded, and what the files it removed left to do on the remote."""

    line: dict[str, Any]  # the revision's line, as its segment will hold it
    doomed_blobs: tuple[BlobRow, ...]  # no reference left: delete them from the remote


@dataclass(frozen=True)
class CatalogueStats:
    channels: int
    messages: int
    attachments: int
    blobs: int
    blob_bytes: int
    segments: int
    unflushed: int
    queued_blob_bytes: int

"""Writing what the catalogue committed to the remote: segments, their transcripts, channel.json.

A segment's lines are fixed in the catalogue (``claim_segment``) before any file is written, so
writing it again after a crash produces the same name and the same bytes: an upload may repeat,
a line never. Files go through the outbox: durable before anyone is told.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

from catalogue import Catalogue, SegmentClaim
from render.transcript_html import render_transcript
from sync import Outbox

FORMAT_VERSION = 1
# From discord/<guild>/<channel>/transcript/ back to the archive root, where blobs/ is.
BLOB_PREFIX = "../../../../"


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _write(path: Path, text: str) -> tuple[str, int]:
    data = text.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest(), len(data)


def _render_and_write(info: dict[str, Any], claim: SegmentClaim, jsonl_path: Path, html_path: Path) -> tuple[str, int]:
    jsonl = "".join(_line(r) + "\n" for r in claim.lines)
    page = render_transcript(info, claim.lines, blob_prefix=BLOB_PREFIX,
                             title=f"#{info['name']} · {claim.first_id}–{claim.last_id}")
    written = _write(jsonl_path, jsonl)
    _write(html_path, page)
    return written


async def write_segment(catalogue: Catalogue, outbox: Outbox, spool: Path, claim: SegmentClaim, dirty: int = 0) -> None:
    """Render a claimed segment (JSONL and HTML) and queue both, in one outbox transaction. ``dirty``: the
    segment's as its lines were read (``segment_rewrite``): a deletion since leaves it to write again."""
    channel = await catalogue.call("channel", claim.channel_id)
    info = {"id": str(claim.channel_id), "name": channel.name if channel else "", "topic": channel.topic if channel
            else None}
    if channel is not None and channel.parent_id:  # a thread's page says whose thread (or forum post) it is
        parent = await catalogue.call("channel", channel.parent_id)
        info.update(parent_id=str(channel.parent_id), parent_name=parent.name if parent else None,
                    parent_type=parent.type if parent else None)
    token = secrets.token_hex(4)
    jsonl_path, html_path = spool / f"segment-{claim.id}-{token}.jsonl", spool / f"segment-{claim.id}-{token}.html"
    # Serialising and rendering a whole segment is real CPU work: a thread, so the loop keeps its heartbeat.
    sha, size = await asyncio.to_thread(_render_and_write, info, claim, jsonl_path, html_path)
    await outbox.enqueue_many([(jsonl_path, claim.path), (html_path, claim.transcript)], kind="capture-segment",
                              group=f"segment-{claim.id}-{token}", meta={"segment_id": claim.id}, move=True)
    await catalogue.call("segment_written", claim.id, sha, size, len(claim.lines), dirty)


async def write_manifest(catalogue: Catalogue, outbox: Outbox, spool: Path, channel_id: int) -> bool:
    """Queue ``channel.json`` if anything it lists changed since the last one; True when it did."""
    due = await catalogue.call("manifest_due", channel_id)
    if not due:
        return False
    # The cursor before the segments: a segment claimed in between is then listed and not yet
    # counted, never counted and not listed (lost with the volume, nothing would say it is missing).
    cursor = await catalogue.call("manifest_cursor", channel_id)
    ch = await catalogue.call("channel", channel_id)
    if ch is None:
        return False
    segments = await catalogue.call("segments", channel_id)
    manifest = {
        "format": FORMAT_VERSION,
        "guild_id": str(ch.guild_id),
        "channel": {"id": str(ch.id), "name": ch.name, "topic": ch.topic, "type": ch.type,
                    "parent_id": str(ch.parent_id) if ch.parent_id else None},
        "cursor": str(cursor),
        "watched": ch.watched,
        "segments": [{"path": s.path, "transcript": s.transcript, "first_id": str(s.first_id),
                      "last_id": str(s.last_id), "records": s.records, "sha256": s.sha256, "size": s.size}
                     for s in segments],
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # A thread Discord deleted: the remote must say so, or a catalogue rebuilt from it would show the
    # thread's archive again to its channel's readers.
    if (gone := await catalogue.call("thread_gone_at", channel_id)) is not None:
        manifest["gone_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(gone))
    path = spool / f"channel-{channel_id}-{secrets.token_hex(4)}.json"
    await asyncio.to_thread(_write, path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    await outbox.enqueue(path, f"discord/{ch.guild_id}/{ch.id}/channel.json", kind="capture-manifest", move=True)
    # Clean only now, and only of the changes it shows: a stop before this line writes it again at
    # the next start, and a change made meanwhile gets a manifest of its own.
    await catalogue.call("manifest_queued", channel_id, due)
    return True

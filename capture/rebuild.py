"""The catalogue rebuilt from the remote's segments: a new deploy on a fresh volume loses nothing.

Reads ``discord/<guild>/<channel>/channel.json`` and ``messages/*.jsonl(.gz)`` through the sync
service (one listing, then ONE copy of those files into a temporary folder under the data dir: a
call per file would cost more than reading them; an archive in a plain local folder is read in
place) and records every line as landed (catalogue/_rebuild.py), so nothing is uploaded again.
A saved file's bytes count as landed only if the remote's ``blobs`` folder, listed once meanwhile,
holds them: bytes an edit or a deletion removed, or that never landed, are uploaded again when posted
again, and fetched again by the next backup of a channel whose saved file needs them.
A batch is read and parsed into rows in a worker thread while the catalogue's thread writes the
batch before it. Safe to run on a catalogue that is not empty (``!reindex``): known lines are
skipped, unflushed ones untouched.

A channel's cursor is its ``channel.json``'s, capped below any segment listed there that the
remote lacks (``cursor_caps``); its segments' ids never raise it, and a channel without a manifest
starts from 0 (catalogue/_rebuild.py says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import heapq
import json
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from catalogue import Catalogue, CatalogueError, prepare
from sync import SyncError, SyncService

log = structlog.get_logger("helix.capture.rebuild")
SEGMENT = re.compile(r"^discord/(\d+)/(\d+)/messages/([^/]+)\.jsonl(\.gz)?$")
MANIFEST = re.compile(r"^discord/(\d+)/(\d+)/channel\.json$")
BLOB = re.compile(r"^blobs/sha256/[0-9a-f]{2}/([0-9a-f]{64})$")
BATCH_LINES = 20_000  # lines written in one catalogue transaction (one disk sync), at most
FIRST_BATCH_LINES = 2_000  # the first batch is small: nothing is written until it is parsed
INCLUDE = ("/*/*/channel.json", "/*/*/messages/*.jsonl", "/*/*/messages/*.jsonl.gz")


@dataclass
class RebuildProgress:
    """What a rebuild did so far, for ``!status`` and ``!reindex``."""

    state: str = "idle"  # idle | running | done | failed
    segments_total: int = 0
    segments_done: int = 0
    lines_added: int = 0
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    retry_at: float | None = None  # a failed start-up rebuild is tried again then (time.time())


def _first_id(path: str) -> tuple[int, str]:
    stem = path.rsplit("/", 1)[-1].split("-", 1)[0]
    return (int(stem) if stem.isdigit() else 0, path)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """A segment's JSON lines (gzip or plain); a line that is not JSON is skipped, not fatal."""
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                log.warning("rebuild_bad_line", file=str(path))
                continue
            if isinstance(obj, dict) and "id" in obj:
                out.append(obj)
    return out


def plan(entries: list[Any]) -> tuple[list[str], list[tuple[int, int, str, str]]]:
    """From a listing: manifests, and segments (guild, channel, path, transcript) oldest first per channel."""
    manifests, segments = [], []
    for e in entries:
        if e.is_dir:
            continue
        if MANIFEST.match(e.path):
            manifests.append(e.path)
        elif m := SEGMENT.match(e.path):
            g, c, stem = m.group(1), m.group(2), m.group(3)
            segments.append((int(g), int(c), e.path, f"discord/{g}/{c}/transcript/{stem}.html"))
    # Oldest first across channels (each channel still in its own order): ids then mostly grow,
    # which is what SQLite's tables and FTS5 append fastest.
    segments.sort(key=lambda s: (_first_id(s[2])[0], s[1], s[2]))
    return sorted(manifests), segments


def in_written_order(segments: list[tuple[int, int, str, str]],
                     manifests: list[dict[str, Any]]) -> list[tuple[int, int, str, str]]:
    """Each channel's segments in the order its ``channel.json`` lists them, the order they were
    written: an edit of an old message lands in a later segment whose name (its first id) can
    sort before the segment of the message itself, and must be read after it. Segments a manifest
    does not list yet (written after it) follow in name order. Channels stay interleaved oldest
    first, each in its own order."""
    rank = {str(s["path"]): i for m in manifests for i, s in enumerate(m.get("segments") or [])
            if isinstance(s, dict) and s.get("path")}

    def written(seg: tuple[int, int, str, str]) -> tuple[int, int, str]:
        path = seg[2].removesuffix(".gz")
        return (0, rank[path], "") if path in rank else (1, _first_id(path)[0], path)

    channels: dict[int, list[tuple[int, int, str, str]]] = {}
    for seg in segments:
        channels.setdefault(seg[1], []).append(seg)
    # merge() keeps each channel's own order whatever the ids say; it only picks which goes next.
    return list(heapq.merge(*(sorted(c, key=written) for c in channels.values()), key=lambda s: _first_id(s[2])[0]))


def cursor_caps(manifests: list[dict[str, Any]], segments: list[tuple[int, int, str, str]]) -> dict[int, int]:
    """Per channel whose ``channel.json`` lists segments the remote does not hold (their upload was
    lost with a volume, or the files were deleted by hand): the highest cursor the rebuild may keep,
    just below the first id of the first one missing. The next backup then fetches those messages
    from Discord again instead of counting them as archived."""
    present = {rel.removesuffix(".gz") for _, _, rel, _ in segments}
    caps: dict[int, int] = {}
    for manifest in manifests:
        try:
            channel_id = int((manifest.get("channel") or {})["id"])
        except (KeyError, TypeError, ValueError):
            continue
        for seg in manifest.get("segments") or []:
            path = str(seg.get("path") or "") if isinstance(seg, dict) else ""
            if not path or path.removesuffix(".gz") in present:
                continue
            ids = [int(x) for x in (seg.get("first_id"), seg.get("last_id")) if str(x or "").isdigit()]
            caps[channel_id] = min(caps.get(channel_id, min(ids, default=1) - 1), min(ids, default=1) - 1)
    return caps


def read_manifests(folder: Path, manifests: list[str]) -> list[dict[str, Any]]:
    return [json.loads((folder / rel).read_text("utf-8")) for rel in manifests]


def read_segment(path: Path) -> bytes:
    """A segment file's bytes, gzip or plain; the catalogue parses them."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _batches(segments: list[tuple[int, int, str, str]], sizes: dict[str, int]) -> list[list[tuple[int, int, str, str]]]:
    """Segments grouped so that a batch holds about BATCH_LINES lines (guessed from the file sizes).

    The first batch holds about FIRST_BATCH_LINES: the catalogue waits for it alone, then writes
    each batch while the next one is parsed."""
    out: list[list[tuple[int, int, str, str]]] = []
    budget = 0
    for seg in segments:
        if not out or budget <= 0:
            out.append([])
            budget = (FIRST_BATCH_LINES if len(out) == 1 else BATCH_LINES) * 400  # bytes: a line is a few hundred
        out[-1].append(seg)
        budget -= max(sizes.get(seg[2], 0), 1) * (8 if seg[2].endswith(".gz") else 1)  # gzip: ~8× smaller
    return out


def _read_batch(folder: Path, batch: list[tuple[int, int, str, str]]) -> list[tuple[Any, ...]]:
    out = []
    for guild_id, channel_id, rel, transcript in batch:
        local = folder / rel
        try:
            lines, size = prepare(read_segment(local), guild_id, channel_id, rel), local.stat().st_size
        except FileNotFoundError:
            continue  # deleted from the remote between the listing and the copy
        out.append((guild_id, channel_id, rel, transcript, lines, None, size))
    return out


async def read_into(catalogue: Catalogue, folder: Path, segments: list[tuple[int, int, str, str]],
                    sizes: dict[str, int], progress: RebuildProgress) -> None:
    """The segments (as ``plan`` lists them) from a local copy of the archive in ``folder``, in batches
    of one transaction each; the next batch is read from disk while the catalogue writes this one."""
    batches = _batches(segments, sizes)
    ahead: asyncio.Task[list[tuple[Any, ...]]] | None = None
    try:
        for i, batch in enumerate(batches):
            rows = await ahead if ahead is not None else await asyncio.to_thread(_read_batch, folder, batch)
            ahead = (asyncio.create_task(asyncio.to_thread(_read_batch, folder, batches[i + 1]))
                     if i + 1 < len(batches) else None)
            added = await catalogue.call("restore_segments", rows)
            progress.lines_added += added  # not ``+= await``: that would add to the count read before the wait
            progress.segments_done += len(batch)
    finally:
        if ahead is not None and not ahead.done():
            ahead.cancel()


async def held_blobs(service: SyncService, listed: bool) -> list[str] | None:
    """The sha256 of every blob on the remote (``listed``: its top level has a ``blobs`` folder; without
    one, none, and no "not found" logged); None when the remote could not say, and the blobs are then
    left as the segments tell them: the check is worth less than the rebuild it would fail."""
    if not listed:
        return []
    try:
        entries = await service.list("blobs", recurse=True)
    except SyncError as exc:
        log.warning("rebuild_blobs_not_listed", error=exc.hint,
                    action="files whose bytes the remote lost are taken for archived until the next !reindex")
        return None
    return [m.group(1) for e in entries if not e.is_dir and (m := BLOB.match(e.path))]


async def rebuild(catalogue: Catalogue, service: SyncService, scratch: Path,
                  progress: RebuildProgress | None = None) -> RebuildProgress:
    """Read every channel and segment on the remote into ``catalogue``; never raises for a remote error."""
    progress = progress or RebuildProgress()
    progress.state, progress.error, progress.started_at = "running", None, time.time()
    progress.segments_done = progress.lines_added = 0
    folder = scratch / f"rebuild-{secrets.token_hex(4)}"
    listing: asyncio.Task[list[str] | None] | None = None
    try:
        await catalogue.call("rebuild_begin")
        # A crypt remote read with the wrong passwords must fail here, or the backups that wait for this
        # rebuild would start a second archive beside the first (with folder names stored plain, such a
        # crypt even lists the `discord` folder, and nothing in it).
        await service.check_readable_archive()
        top = {e.path.strip("/") for e in await service.list("", recurse=False) if e.is_dir}
        # The blobs are listed while the segments are read: the segments take their bytes for landed.
        listing = asyncio.create_task(held_blobs(service, "blobs" in top))
        listing.add_done_callback(lambda t: t.cancelled() or t.exception())  # not "never retrieved" if unawaited
        # An archive that never held captured content: nothing to read, and no "not found" logged.
        entries = await service.list("discord", recurse=True) if "discord" in top else []
        manifests, segments = plan(entries)
        progress.segments_total = len(segments)
        await catalogue.call("rebuild_mode", True)
        in_place = service.local_folder("discord")
        if in_place is not None:
            source = in_place.parent
        else:
            source = folder
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            if manifests or segments:
                await service.fetch_tree("discord", folder / "discord", INCLUDE)
        channels = await asyncio.to_thread(read_manifests, source, manifests)
        await catalogue.call("restore_channels", channels)
        segments = in_written_order(segments, channels)
        await read_into(catalogue, source, segments, {e.path: e.size for e in entries}, progress)
        held = await listing
        if held is not None and (lost := await catalogue.call("blobs_not_held", held)):
            log.warning("rebuild_blobs_missing", blobs=lost,
                        action="the next backup of their channels fetches those files again while Discord has them")
        if caps := cursor_caps(channels, segments):
            await catalogue.call("cap_cursors", caps)
            log.warning("rebuild_segments_missing", channels=sorted(caps),
                        action="the next backup of these channels fetches the messages of the missing segments "
                               "from Discord again")
        await catalogue.call("rebuild_end")
        progress.state = "done"
        log.info("rebuild_done", segments=progress.segments_done, lines=progress.lines_added)
    except SyncError as exc:
        progress.state, progress.error = "failed", exc.hint
        log.warning("rebuild_failed", error=exc.hint, action="run !reindex once the archive remote answers")
    except (OSError, ValueError, KeyError) as exc:
        progress.state, progress.error = "failed", f"{type(exc).__name__}: {exc}"
        log.warning("rebuild_failed", error=progress.error)
    except CatalogueError as exc:  # the volume: full, or not writable
        progress.state, progress.error = "failed", str(exc)
        log.warning("rebuild_failed", error=progress.error)
    except Exception as exc:  # a bug, or a file no reader foresaw: failed, so it is retried and shown, not stuck
        progress.state, progress.error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("rebuild_crashed")
    finally:
        if listing is not None:
            listing.cancel()  # still running only when the rebuild failed before it needed the listing
        progress.finished_at = time.time()
        await asyncio.to_thread(shutil.rmtree, folder, True)
        with contextlib.suppress(CatalogueError):
            await catalogue.call("rebuild_mode", False)
    return progress

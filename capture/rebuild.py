"""The catalogue rebuilt from the remote's segments: a new deploy on a fresh volume loses nothing.

Reads ``discord/<guild>/<channel>/channel.json`` and ``messages/*.jsonl(.gz)`` through the sync
service (one listing, then one fetch per file into a temporary folder under the data dir) and
records every line as landed (catalogue/_rebuild.py), so nothing is uploaded again. Safe to run
on a catalogue that is not empty (``!reindex``): known lines are skipped, unflushed ones untouched.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from catalogue import Catalogue
from sync import SyncError, SyncService

log = structlog.get_logger("helix.capture.rebuild")
SEGMENT = re.compile(r"^discord/(\d+)/(\d+)/messages/([^/]+)\.jsonl(\.gz)?$")
MANIFEST = re.compile(r"^discord/(\d+)/(\d+)/channel\.json$")
FETCH_AT_ONCE = 8  # segments fetched together, then written in one catalogue transaction


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

    def line(self) -> str:
        if self.state == "running":
            return f"rebuilding from the remote: {self.segments_done}/{self.segments_total} segments"
        if self.state == "failed":
            return "rebuild from the remote failed (the log says why); the owner can retry with `!reindex`"
        if self.state == "done":
            return f"rebuilt from the remote: {self.segments_done} segments, {self.lines_added:,} lines added"
        return "not rebuilt"


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
    segments.sort(key=lambda s: (s[1], _first_id(s[2])))
    return sorted(manifests), segments


async def _read_all(catalogue: Catalogue, service: SyncService, folder: Path,
                    segments: list[tuple[int, int, str, str]], progress: RebuildProgress) -> None:
    """A few segments fetched and parsed at once, then written in one transaction (one disk sync)."""

    async def read(guild_id: int, channel_id: int, rel: str, transcript: str) -> tuple[Any, ...]:
        local = await service.fetch(rel, folder / rel.replace("/", "_"))
        lines = await asyncio.to_thread(read_lines, local)
        size = (await asyncio.to_thread(local.stat)).st_size
        await asyncio.to_thread(local.unlink, True)
        return guild_id, channel_id, rel, transcript, lines, None, size

    for i in range(0, len(segments), FETCH_AT_ONCE):
        batch = await asyncio.gather(*(read(*seg) for seg in segments[i:i + FETCH_AT_ONCE]))
        progress.lines_added += await catalogue.call("restore_segments", batch)
        progress.segments_done += len(batch)


async def rebuild(catalogue: Catalogue, service: SyncService, scratch: Path,
                  progress: RebuildProgress | None = None) -> RebuildProgress:
    """Read every channel and segment on the remote into ``catalogue``; never raises for a remote error."""
    progress = progress or RebuildProgress()
    progress.state, progress.error, progress.started_at = "running", None, time.time()
    progress.segments_done = progress.lines_added = 0
    folder = scratch / f"rebuild-{secrets.token_hex(4)}"
    try:
        top = await service.list("", recurse=False)
        # An archive that never held captured content: nothing to read, and no "not found" logged.
        entries = await service.list("discord", recurse=True) if any(
            e.is_dir and e.path.strip("/") == "discord" for e in top) else []
        manifests, segments = plan(entries)
        progress.segments_total = len(segments)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        for rel in manifests:
            local = await service.fetch(rel, folder / "channel.json")
            manifest = json.loads(await asyncio.to_thread(local.read_text, "utf-8"))
            await catalogue.call("restore_channel", manifest)
        await _read_all(catalogue, service, folder, segments, progress)
        progress.state = "done"
        log.info("rebuild_done", segments=progress.segments_done, lines=progress.lines_added)
    except SyncError as exc:
        progress.state, progress.error = "failed", exc.hint
        log.warning("rebuild_failed", error=exc.hint, action="run !reindex once the archive remote answers")
    except (OSError, ValueError, KeyError) as exc:
        progress.state, progress.error = "failed", f"{type(exc).__name__}: {exc}"
        log.warning("rebuild_failed", error=progress.error)
    finally:
        progress.finished_at = time.time()
        await asyncio.to_thread(shutil.rmtree, folder, True)
    return progress

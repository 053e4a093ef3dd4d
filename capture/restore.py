"""A channel's archive brought back to a folder: segments, transcripts and the blobs they reference.

The folder keeps the remote's layout (``discord/<guild>/<channel>/…`` and ``blobs/sha256/…``), so
the transcripts' relative links to the blobs work as they are: open the folder's ``index.html``
in a browser, offline. Nothing needs Helix to read what was restored.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from capture.rebuild import read_lines
from sync import SyncService

TARGET = re.compile(r"^(\d{1,20})/(\d{1,20})$")
CONCURRENT_FETCHES = 4
# progress(done, total, what was just restored)
ProgressFn = Callable[[int, int, str], None]


class RestoreError(ValueError):
    """What to restore cannot be found or understood; ``str(err)`` is one sentence with the fix."""


@dataclass(frozen=True)
class Restored:
    folder: Path
    files: int
    bytes: int
    transcripts: tuple[str, ...]
    index: Path


def parse_target(text: str) -> tuple[int, int]:
    m = TARGET.match(text.strip())
    if m is None:
        raise RestoreError(f"{text!r} is not <guild_id>/<channel_id>: for example 1456074443980800002/"
                           "1456074443980800023 (`python -m sync ls discord/` lists what is archived).")
    return int(m.group(1)), int(m.group(2))


async def restore_channel(service: SyncService, guild_id: int, channel_id: int, dest: Path,
                          progress: ProgressFn | None = None) -> Restored:
    """Download one channel's archive into ``dest``; blobs are read from the segments' lines."""
    _check_folder(dest)
    base = f"discord/{guild_id}/{channel_id}"
    entries = [e for e in await service.list(base, recurse=True) if not e.is_dir]
    if not entries:
        raise RestoreError(f"Nothing is archived under {base}/ on {service.display}: check the ids with "
                           "`python -m sync ls discord/`.")
    wanted = {f"{base}/{e.path}" if not e.path.startswith(base) else e.path: e.size for e in entries}
    segments = sorted(p for p in wanted if re.search(r"/messages/[^/]+\.jsonl(\.gz)?$", p))
    total = len(wanted)
    done = 0
    size = 0
    limit = asyncio.Semaphore(CONCURRENT_FETCHES)

    async def one(rel: str) -> None:
        nonlocal done, size
        async with limit:
            local = await service.fetch(rel, dest / rel)
        stat = await asyncio.to_thread(local.stat)  # awaited before the sum: ``size += await …`` loses updates
        done += 1
        size += stat.st_size
        if progress:
            progress(done, total, rel)

    await asyncio.gather(*(one(rel) for rel in sorted(wanted)))
    blobs: set[str] = set()
    for rel in segments:
        for line in await asyncio.to_thread(read_lines, dest / rel):
            for att in line.get("attachments") or []:
                if att.get("blob") and att.get("status", "saved") == "saved":
                    blobs.add(str(att["blob"]))
    total += len(blobs)
    await asyncio.gather(*(one(rel) for rel in sorted(blobs)))
    transcripts = tuple(sorted(p for p in wanted if p.endswith(".html")))
    index = await asyncio.to_thread(_write_index, dest, base, transcripts)
    return Restored(dest, done, size, transcripts, index)


def _check_folder(dest: Path) -> None:
    """A file where the folder would be is the operator's mistake: said as such before anything is
    fetched, not as the archive's fault when the first download cannot be written."""
    for path in (dest, *dest.parents):
        if path.exists():
            if not path.is_dir():
                raise RestoreError(f"{path} is a file, not a folder: choose a folder to restore into "
                                   "(a new one is created).")
            return


def _write_index(dest: Path, base: str, transcripts: tuple[str, ...]) -> Path:
    """A first page for the folder: the channel's name and a link to each transcript, oldest first."""
    name = base
    manifest = dest / base / "channel.json"
    if manifest.is_file():
        name = "#" + str((json.loads(manifest.read_text("utf-8")).get("channel") or {}).get("name") or base)
    items = "".join(f'<li><a href="{html.escape(t)}">{html.escape(t.rsplit("/", 1)[-1])}</a></li>'
                    for t in transcripts)
    page = dest / "index.html"
    page.write_text(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}'
                    f"</title></head><body><h1>{html.escape(name)}</h1><ul>{items}</ul></body></html>\n", "utf-8")
    return page

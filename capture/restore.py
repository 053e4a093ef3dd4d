"""A channel's archive brought back to a folder: segments, transcripts, the blobs they reference, and
pages that show the channel as it stands now.

The folder keeps the remote's layout (``discord/<guild>/<channel>/…`` and ``blobs/sha256/…``), so
relative links to the blobs work as they are: open the folder's ``index.html`` in a browser,
offline. Nothing needs Helix to read what was restored.

The remote's transcripts each show one segment as it was written, so an edit or a deletion that
landed in a later segment is not on the page of the message it changed. A restore therefore renders
its own pages (``discord/<guild>/<channel>/restored/``) from all the channel's lines, and of its
threads and forum posts, which are channels of their own found by their ``parent_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capture.rebuild import read_lines
from capture.restore_dest import RestoreError, check_contents, check_destination, check_writable
from render.restore_index import IndexPage, render_index
from render.transcript_html import PageLinks, current_pages, render_transcript
from sync import NotFoundError, SyncError, SyncService

TARGET = re.compile(r"^(\d{1,20})/(\d{1,20})$")
BLOB = re.compile(r"^blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}$")
SEGMENT = re.compile(r"/messages/[^/]+\.jsonl(\.gz)?$")
CONCURRENT_FETCHES = 4
# From discord/<guild>/<channel>/restored/ back to the folder's root, where blobs/ and files/ are.
ROOT_PREFIX = "../../../../"
SHOWN_MISSING = 3
# progress(done, total, what was just restored)
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Restored:
    folder: Path
    files: int
    bytes: int
    pages: tuple[str, ...]
    index: Path
    missing: tuple[str, ...] = ()  # files the segments refer to that the remote does not have
    unsafe: tuple[str, ...] = ()  # attachment paths in a segment that are not blob paths: not fetched
    threads: tuple[str, ...] = ()  # thread and post ids restored with the channel


def parse_target(text: str) -> tuple[int, int]:
    m = TARGET.match(text.strip())
    if m is None:
        raise RestoreError(f"{text!r} is not <guild_id>/<channel_id>: for example 1456074443980800002/"
                           "1456074443980800023 (`python -m sync ls discord/` lists what is archived).")
    return int(m.group(1)), int(m.group(2))


async def restore_channel(service: SyncService, guild_id: int, channel_id: int, dest: Path,
                          progress: ProgressFn | None = None) -> Restored:
    """Download one channel's archive, and its threads', into ``dest`` and render its pages there.

    A file the remote does not have is left out and named in ``Restored.missing``: the rest is
    still worth having. A crypt archive these passwords cannot read raises ArchiveUnreadable first.
    """
    dest = await asyncio.to_thread(check_destination, dest)
    # A crypt archive read with the wrong passwords lists as empty (or, names unencrypted, as files that
    # cannot be read): say so, naming the password, rather than "nothing is archived".
    await service.check_readable_archive()
    base = f"discord/{guild_id}/{channel_id}"
    entries = [e for e in await service.list(base, recurse=True) if not e.is_dir]
    guild_known = bool(entries) or bool(await service.list(f"discord/{guild_id}", recurse=False))
    manifests = await _guild_manifests(service, guild_id) if guild_known else {}
    threads = sorted((cid for cid, m in manifests.items() if str((m.get("channel") or {}).get("parent_id"))
                      == str(channel_id)), key=int)
    if not entries and not threads:  # a forum has no folder of its own, only its posts do
        where = (f"`python -m sync ls discord/{guild_id}/` lists what is archived of guild {guild_id}, a folder per "
                 "channel" if guild_known else f"guild {guild_id} has nothing archived there either, and "
                 "`python -m sync ls discord/` lists the guilds that have")
        raise RestoreError(f"Nothing is archived under {base}/ (guild {guild_id}, channel {channel_id}) on "
                           f"{service.display}: {where}.")
    await asyncio.to_thread(check_contents, dest, guild_id, channel_id, threads)
    await asyncio.to_thread(check_writable, dest)
    wanted = [_under(base, e.path) for e in entries]
    for tid in threads:
        tbase = f"discord/{guild_id}/{tid}"
        wanted += [_under(tbase, e.path) for e in await service.list(tbase, recurse=True) if not e.is_dir]
    fetcher = _Fetcher(service, dest, progress, len(wanted))
    await fetcher.all(sorted(set(wanted)))
    blobs, unsafe = await asyncio.to_thread(_blobs_shown, dest, guild_id, [str(channel_id), *threads], manifests)
    fetcher.total += len(blobs)
    await fetcher.all(sorted(blobs))
    pages, index = await asyncio.to_thread(_write_pages, dest, guild_id, channel_id, threads, manifests, blobs)
    return Restored(dest, fetcher.done, fetcher.size, pages, index, tuple(sorted(fetcher.missing)),
                    tuple(sorted(unsafe)), tuple(threads))


def _blobs_shown(dest: Path, guild_id: int, channel_ids: list[str],
                 manifests: Mapping[str, Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """The saved files' blobs the pages show, the messages as they stand now (a file an edit removed
    is still in its message's first line, and its bytes left the remote with it); and the blob paths a
    record names that are not Helix's (left out: they could point anywhere in DEST)."""
    blobs: set[str] = set()
    unsafe: set[str] = set()
    for cid in channel_ids:
        base = f"discord/{guild_id}/{cid}"
        for _, records in _channel_pages(dest, base, _manifest(dest, base, manifests.get(cid))):
            for att in (a for r in records for a in r.get("attachments") or []):
                if att.get("blob") and att.get("status", "saved") == "saved":
                    (blobs if BLOB.match(str(att["blob"])) else unsafe).add(str(att["blob"]))
    return blobs, unsafe


def _under(base: str, path: str) -> str:
    return path if path.startswith(base + "/") else f"{base}/{path}"


class _Fetcher:
    """Files fetched a few at a time, each counted once however many run side by side."""

    def __init__(self, service: SyncService, dest: Path, progress: ProgressFn | None, total: int) -> None:
        self.service, self.dest, self.progress, self.total = service, dest, progress, total
        self.done = self.size = 0
        self.missing: list[str] = []
        self.limit = asyncio.Semaphore(CONCURRENT_FETCHES)

    async def all(self, paths: list[str]) -> None:
        await asyncio.gather(*(self.one(rel) for rel in paths))

    async def one(self, rel: str) -> None:
        async with self.limit:
            try:
                local = await self.service.fetch(rel, self.dest / rel)
            except NotFoundError:
                self.missing.append(rel)
                return
            except SyncError:
                # rclone says "failed" for a folder it cannot write to: that is DEST's fault, said as such
                await asyncio.to_thread(check_writable, self.dest)
                raise
        stat = await asyncio.to_thread(local.stat)  # awaited before the sum: ``size += await …`` loses updates
        self.done += 1
        self.size += stat.st_size
        if self.progress:
            self.progress(self.done, self.total, rel)


async def _guild_manifests(service: SyncService, guild_id: int) -> dict[str, dict[str, Any]]:
    """Every channel.json of the guild, by channel id: a thread names its channel only in its own."""
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="helix-restore-"))
    try:
        await service.fetch_tree(f"discord/{guild_id}", folder, ["/*/channel.json"])
        return await asyncio.to_thread(_read_manifests, folder)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


def _read_manifests(folder: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in folder.glob("*/channel.json"):
        try:
            manifest = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue  # a manifest that cannot be read names no thread; its channel is restored on its own
        if isinstance(manifest, dict) and path.parent.name.isdigit():
            found[path.parent.name] = manifest
    return found


def _safe_name(name: str) -> str:
    """A file name from a record, made safe to write: no folders, no control characters, not hidden."""
    name = re.sub(r'[\x00-\x1f/\\:*?"<>|]', "_", name).strip(" .")
    while len(name.encode()) > 200:
        name = name[:-1]
    return name or "file"


def _place_file(blob: Path, target: Path) -> None:
    """The blob again under its file's own name: a hard link (no second copy) where the disk allows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        if target.samefile(blob):
            return
        target.unlink()
    try:
        os.link(blob, target)
    except OSError:
        shutil.copyfile(blob, target)


def _write_pages(dest: Path, guild_id: int, channel_id: int, threads: list[str],
                 manifests: Mapping[str, Mapping[str, Any]], blobs: set[str]) -> tuple[tuple[str, ...], Path]:
    names = {cid: str((m.get("channel") or {}).get("name") or "") for cid, m in manifests.items()}
    channel_ids = [str(channel_id), *threads]
    firsts: dict[str, str] = {}
    rendered: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for cid in channel_ids:
        base = f"discord/{guild_id}/{cid}"
        rendered[cid] = _channel_pages(dest, base, _manifest(dest, base, manifests.get(cid)))
        if rendered[cid]:
            firsts[cid] = f"{base}/restored/{rendered[cid][0][0]}.html"
    written: list[str] = []
    files: dict[str, str] = {}
    for cid in channel_ids:
        base = f"discord/{guild_id}/{cid}"
        info = dict(_manifest(dest, base, manifests.get(cid)).get("channel") or {"id": cid})
        parent = manifests.get(str(info.get("parent_id")))
        if parent is not None:
            info["parent_name"] = (parent.get("channel") or {}).get("name")
            info["parent_type"] = (parent.get("channel") or {}).get("type")
        links = {tid: (f"../../{tid}/restored/{firsts[tid].rsplit('/', 1)[-1]}", names.get(tid) or tid)
                 for tid in threads if tid in firsts} if cid == str(channel_id) else {}
        elsewhere = {str(r.get("id")): (f"{stem}.html#m{r.get('id')}", r)
                     for stem, records in rendered[cid] for r in records}
        stems = [stem for stem, _ in rendered[cid]]
        for i, (stem, records) in enumerate(rendered[cid]):
            for r in records:
                files.update(_attachment_files(dest, r))
            page = f"{base}/restored/{stem}.html"
            out = dest / page
            out.parent.mkdir(parents=True, exist_ok=True)
            nav = PageLinks(index=f"{ROOT_PREFIX}index.html", previous=f"{stems[i - 1]}.html" if i else None,
                            next=f"{stems[i + 1]}.html" if i + 1 < len(stems) else None, number=i + 1,
                            count=len(stems))
            out.write_text(render_transcript(info, records, blob_prefix=ROOT_PREFIX, files=files, elsewhere=elsewhere,
                                             threads=links, channels=names, links=nav,
                                             title=f"#{info.get('name') or cid} · page {i + 1} of {len(stems)}"),
                           "utf-8")
            written.append(page)
    index = _write_index(dest, guild_id, channel_ids, rendered, names)
    _prune(dest, {*written, *files.values(), *blobs}, [f"discord/{guild_id}/{cid}/restored" for cid in channel_ids])
    return tuple(written), index


def _prune(dest: Path, kept: set[str], page_folders: list[str]) -> None:
    """What an earlier restore into ``dest`` wrote that the channel no longer shows: a file deleted on
    Discord since (its message, or an edit removing it) must not stay in a folder that says it is the
    channel as it stands, and neither must a page of segments the remote no longer holds."""
    for top in ("files", "blobs", *page_folders):
        folder = dest / top
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*"), reverse=True):  # a folder's files before the folder
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()  # only once empty
            elif path.relative_to(dest).as_posix() not in kept:
                path.unlink()


def _manifest(dest: Path, base: str, fallback: Mapping[str, Any] | None) -> Mapping[str, Any]:
    path = dest / base / "channel.json"
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return fallback or {}


def _channel_pages(dest: Path, base: str, manifest: Mapping[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The channel's pages as (segment name, records in their current state), in the order written."""
    listed = [str(s.get("path")) for s in manifest.get("segments") or [] if isinstance(s, Mapping)]
    found = sorted(p.relative_to(dest).as_posix() for p in (dest / base / "messages").glob("*.jsonl*"))
    order = [p for p in listed if p in found] + [p for p in found if p not in listed]
    segments = [read_lines(dest / p) for p in order]
    stems = [re.sub(r"\.jsonl(\.gz)?$", "", p.rsplit("/", 1)[-1]) for p in order]
    return [(stems[i], records) for i, records in current_pages(segments)]


def _attachment_files(dest: Path, record: Mapping[str, Any]) -> dict[str, str]:
    """Each saved file of ``record`` as ``files/<attachment id>/<its name>``, beside its blob."""
    out = {}
    for att in record.get("attachments") or []:
        blob, aid = str(att.get("blob") or ""), str(att.get("id") or "")
        if not (BLOB.match(blob) and aid.isdigit() and (dest / blob).is_file()):
            continue
        rel = f"files/{aid}/{_safe_name(str(att.get('filename') or 'file'))}"
        _place_file(dest / blob, dest / rel)
        out[aid] = rel
    return out


def _write_index(dest: Path, guild_id: int, channel_ids: list[str],
                 rendered: Mapping[str, list[tuple[str, list[dict[str, Any]]]]], names: Mapping[str, str]) -> Path:
    """A first page for the folder: the channel's pages, oldest first, then its threads and posts."""

    def pages(cid: str) -> list[IndexPage]:
        return [IndexPage(f"discord/{guild_id}/{cid}/restored/{stem}.html", records) for stem, records in rendered[cid]]

    main, *threads = channel_ids
    page = dest / "index.html"
    page.write_text(render_index(names.get(main) or main, pages(main),
                                 [(names.get(t) or t, pages(t)) for t in threads]), "utf-8")
    return page

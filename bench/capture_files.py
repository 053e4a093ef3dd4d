"""Capture with files: ``!backup`` of a channel full of attachments versus download-then-copy by hand.

Contenders, alternated round by round, each on a fresh destination (dirty pages flushed between):

* ``helix`` -- the real bot with capture, logged in to a fresh loopback Discord (real discord.py
  over HTTP and a websocket, ``tests/support/loopback.py``, as the backfill section; SimCord's
  in-process instrumentation of the event loop would be part of the time otherwise), a channel of
  ``files`` messages with one attachment each, ``total_mib`` in all; timed from ``!backup`` to the
  backup finished and the outbox drained (everything on the archive remote, a local folder). The
  5 ms ticker runs meanwhile (loop lag). Then, untimed apart, the same ``!backup`` again on the
  unchanged channel: its time and the files it uploaded (the remote folder's new or rewritten files).
* ``plain`` -- one ``curl`` process downloading the same files from the same CDN to a folder,
  one after another (a naive Python loop where there is no curl), then one ``rclone copy`` of
  that folder with the daemon's flags. Neither fsyncs, where Helix must (its outbox, when it takes
  a file) before it says "queued".
* ``downloads`` -- Helix's downloader alone (``capture.download``), as many at once as a backup
  runs, each file hashed as it is written, nothing synced, queued or uploaded: the floor of the
  backup, against curl's download phase of the same round (``capture_downloads_vs_curl``).

The CDN (``tests.support.cdn.CdnProcess``) serves the files from disk with sendfile in a child
process, so this process holds the bot, the loopback Discord's thread and the archive client
only: the ticker's RSS is the bot's. Memory: one attachment of ``big_mib`` and one of 16 MiB, each backed up in its own
fresh guild (small first: Python rarely hands memory back, so growth with size would show), and
the difference of the peaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

from bench.stats import alternate, median, ratios, spread, summary
from bench.ticker import Ticker
from bench.tools import daemon_flags, run_timed, tool_env
from bench.workload import MIB, random_file, remove, scratch
from capture.download import Downloader
from capture.settings import CaptureSettings
from sync import SyncService, SyncSettings
from tests.support.cdn import CdnProcess, discord_like_history
from tests.support.loopback import LoopbackDiscord
from tests.support.loopback_capture import CaptureOnLoopback, capture_settings, helix_capture_on_loopback

SMALL_MIB = 16
IDLE_S = 0.5
BACKUP_S = 900.0
# The CDN names a file by an attachment id: any number that never repeats in this process will do.
_SNOWFLAKES = SimpleNamespace(backend=SimpleNamespace(snowflake=itertools.count(1 << 40).__next__))


async def _flush() -> None:
    await asyncio.to_thread(os.sync)


def _make_files(folder: Path, count: int, total: int) -> list[Path]:
    base, extra = divmod(total, count)
    return [random_file(folder / f"file-{i:04d}.bin", base + (1 if i < extra else 0)) for i in range(count)]


def _remote_files(root: Path) -> dict[str, tuple[int, int, int]]:
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): (st.st_mtime_ns, st.st_size, st.st_ino)
            for p in root.rglob("*") if p.is_file() and (st := p.stat())}


@contextlib.asynccontextmanager
async def _guild(data_dir: Path, biggest: int, **archive: Any) -> AsyncIterator[CaptureOnLoopback]:
    """A fresh loopback Discord, data folder and archive (``archive``: SyncSettings fields such as
    ``archive`` and ``extra_env`` for a remote): the bot with its defaults, the limits raised where
    the big file needs it."""
    settings = capture_settings(data_dir)
    settings = replace(settings, sync=replace(settings.sync, **archive))
    capture = replace(settings.capture,
                      max_attachment_bytes=max(settings.capture.max_attachment_bytes, biggest + MIB),
                      spool_max_bytes=max(settings.capture.spool_max_bytes, 2 * biggest + 64 * MIB))
    async with LoopbackDiscord() as fake, \
            helix_capture_on_loopback(replace(settings, capture=capture), fake) as helix:
        yield helix


async def _channel(helix: CaptureOnLoopback, cdn: CdnProcess, name: str, sources: list[Path]) -> int:
    """A channel whose ``sources`` are one attachment each, on the CDN process; its id."""
    channel_id = await helix.fake.add_channel(name)
    await helix.fake.add_messages(channel_id, len(sources), content="file {i}",
                                  hosted=lambda i: [cdn.attachment_file(_SNOWFLAKES, int(channel_id), sources[i])])
    return int(channel_id)


async def _backup(helix: CaptureOnLoopback, channel_id: int) -> Any:
    """``!backup`` by the owner, until the backup is finished and the outbox drained; the finished row."""
    finished: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def listener(row: Any, tally: Any, done: bool) -> None:
        if done and row.channel_id == channel_id and not finished.done():
            finished.set_result(row)

    helix.capture.subscribe(listener)
    try:
        answer = await helix.backup(str(channel_id))
        assert "Backing up" in answer["content"], answer
        row = await asyncio.wait_for(finished, BACKUP_S)
    finally:
        helix.capture._listeners.remove(listener)
    assert await helix.archive.worker.drain(BACKUP_S), "the outbox did not drain"
    assert row.state == "done", row
    return row


class HelixRounds:
    """The ``helix`` contender and what it records beside its time."""

    def __init__(self, root: Path, cdn: CdnProcess, sources: list[Path]) -> None:
        self.root, self.cdn, self.sources = root, cdn, sources
        self.biggest = max(p.stat().st_size for p in sources)
        self.lag_max_ms: list[float] = []
        self.lag_p99_ms: list[float] = []
        self.second_s: list[float] = []
        self.second_uploads: list[int] = []
        self.second_outbox_items: list[int] = []
        self.idle_lag_max_ms: list[float] = []  # the ticker alone, just before: this machine's own noise
        self.rounds = 0

    async def __call__(self) -> float:
        self.rounds += 1
        data_dir = self.root / f"helix-{self.rounds}"
        try:
            async with _guild(data_dir, self.biggest) as helix:
                channel_id = await _channel(helix, self.cdn, "files", self.sources)
                remote = helix.storage
                await _flush()
                async with Ticker() as idle:
                    await asyncio.sleep(IDLE_S)
                self.idle_lag_max_ms.append(idle.max_ms)
                async with Ticker() as ticker:
                    t0 = time.perf_counter()
                    row = await _backup(helix, channel_id)
                    first = time.perf_counter() - t0
                assert row.files == len(self.sources), row
                blobs = [p for p in (remote / "blobs").rglob("*") if p.is_file()]
                assert len(blobs) == len(self.sources), len(blobs)
                self.lag_max_ms.append(ticker.max_ms)
                self.lag_p99_ms.append(ticker.p99_ms)

                before = _remote_files(remote)
                done_before = (await helix.archive.outbox.counts()).done
                await _flush()
                t0 = time.perf_counter()
                row = await _backup(helix, channel_id)
                second = time.perf_counter() - t0
                after = _remote_files(remote)
                self.second_s.append(second / first)
                self.second_uploads.append(sum(1 for k, v in after.items() if before.get(k) != v))
                self.second_outbox_items.append((await helix.archive.outbox.counts()).done - done_before)
                return first
        finally:
            await asyncio.to_thread(remove, data_dir)


async def _rss(root: Path, cdn: CdnProcess, small: Path, big: Path, biggest: int, rounds: int) -> dict:
    """Peak RSS of this (the bot's) process during a one-file backup, small then big, each in a fresh guild."""
    peaks: dict[str, list[int]] = {"small": [], "big": []}
    for r in range(rounds + 1):  # the first small run warms up (imports, first guild): not recorded
        for name, src in (("small", small), ("big", big)):
            if r == 0 and name == "big":
                continue
            data_dir = root / f"rss-{name}-{r}"
            try:
                async with _guild(data_dir, biggest) as helix:
                    channel_id = await _channel(helix, cdn, name, [src])
                    await _flush()
                    async with Ticker() as ticker:
                        await _backup(helix, channel_id)
                    if r > 0:
                        peaks[name].append(ticker.peak_rss)
            finally:
                await asyncio.to_thread(remove, data_dir)
            await _flush()
    diffs = [(b - s) / MIB for b, s in zip(peaks["big"], peaks["small"], strict=True)]
    return {"diff_mb": diffs, "peak_small_mb": [p / MIB for p in peaks["small"]],
            "peak_big_mb": [p / MIB for p in peaks["big"]]}


async def _streamed(urls: list[tuple[str, str]], folder: Path) -> float:
    """Without curl: the same plain download in Python, one file after another, streamed to disk."""
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for url, name in urls:
            async with session.get(url) as resp:
                resp.raise_for_status()
                with open(folder / name, "wb") as fh:  # noqa: ASYNC230 -- the naive reference, on purpose
                    async for chunk in resp.content.iter_chunked(MIB):
                        fh.write(chunk)
    return time.perf_counter() - t0


async def run(cfg: dict) -> dict:
    count, total, big_size = int(cfg["files"]), int(cfg["total_mib"]) * MIB, int(cfg["big_mib"]) * MIB
    rounds = int(cfg["rounds"])
    curl = shutil.which("curl")
    with scratch("capture") as root:
        sources = await asyncio.to_thread(_make_files, root / "src", count, total)
        small = await asyncio.to_thread(random_file, root / "one" / "small.bin", min(SMALL_MIB * MIB, big_size))
        big = await asyncio.to_thread(random_file, root / "one" / "big.bin", big_size)
        with discord_like_history():
            async with CdnProcess(root / "cdn") as cdn, SyncService(SyncSettings(data_dir=root / "tools")) as svc:
                urls = [(cdn.attachment_file(_SNOWFLAKES, 1, src)["url"], src.name) for src in sources]
                rclone, flags, env = svc._daemon.binary or "rclone", daemon_flags(svc._daemon.argv()), tool_env(svc)
                fetched, copied = root / "plain-download", root / "plain-copy"
                phases: dict[str, list[float]] = {"download": [], "copy": []}

                async def plain() -> float:
                    await asyncio.to_thread(fetched.mkdir, parents=True, exist_ok=True)
                    if curl is None:
                        download = await _streamed(urls, fetched)
                    else:
                        argv = [curl, "--silent", "--show-error", "--fail"]
                        for url, name in urls:
                            argv += ["--output", str(fetched / name), url]
                        download = await run_timed(argv)
                    copy = await run_timed([rclone, "copy", str(fetched), str(copied), *flags], env)
                    assert len(list(copied.iterdir())) == count
                    phases["download"].append(download)
                    phases["copy"].append(copy)
                    return download + copy

                spool = root / "downloads"
                per_page = CaptureSettings().downloads_per_page

                async def downloads() -> float:
                    downloader = Downloader(spool)
                    await downloader.open()
                    limit = asyncio.Semaphore(per_page)

                    async def one(url: str) -> None:
                        async with limit:
                            await downloader.fetch(url, total)

                    try:
                        t0 = time.perf_counter()
                        await asyncio.gather(*(one(url) for url, _ in urls))
                        return time.perf_counter() - t0
                    finally:
                        await downloader.close()

                async def clear() -> None:
                    for folder in (fetched, copied, spool):
                        await asyncio.to_thread(remove, folder)
                    await _flush()

                rss = await _rss(root, cdn, small, big, big_size, rounds=max(1, rounds - 1))
                helix = HelixRounds(root, cdn, sources)
                times = await alternate({"helix": helix, "plain": plain, "downloads": downloads}, rounds,
                                        between=clear)
    # The warm-up round's side figures are dropped too.
    for side in ("lag_max_ms", "lag_p99_ms", "idle_lag_max_ms", "second_s", "second_uploads", "second_outbox_items"):
        setattr(helix, side, getattr(helix, side)[-rounds:])
    phases = {k: v[-rounds:] for k, v in phases.items()}
    files_ratio = ratios(times["helix"], times["plain"])
    downloads_vs_curl = ratios(times["downloads"], phases["download"])
    samples = {
        "capture_files_ratio": files_ratio,
        "capture_second_ratio": helix.second_s,
        "capture_rss_by_size_mb": rss["diff_mb"],
        "capture_loop_lag_max_ms": helix.lag_max_ms,
    }
    return {
        "figures": {**{k: median(v) for k, v in samples.items()},
                    "capture_second_uploads": max(helix.second_uploads),
                    "capture_downloads_vs_curl": median(downloads_vs_curl)},
        "spread": {k: spread(v) for k, v in samples.items()},
        "details": {
            "files": count, "total_mib": total // MIB, "big_mib": big_size // MIB, "rounds": rounds,
            "plain_download_tool": "curl" if curl else "python-aiohttp",
            "times_s": {k: summary(v) for k, v in times.items()},
            "plain_phases_s": {k: summary(v) for k, v in phases.items()},
            "files_ratio": [round(x, 3) for x in files_ratio],
            "downloads_vs_curl": [round(x, 3) for x in downloads_vs_curl],
            "helix_mib_s": total / MIB / median(times["helix"]),
            "second_ratio": [round(x, 4) for x in helix.second_s],
            "second_uploads": helix.second_uploads,
            "second_outbox_items": helix.second_outbox_items,
            "lag_max_ms": [round(x, 2) for x in helix.lag_max_ms],
            "lag_p99_ms": [round(x, 2) for x in helix.lag_p99_ms],
            "lag_idle_max_ms": [round(x, 2) for x in helix.idle_lag_max_ms],
            "rss": {k: [round(x, 1) for x in v] for k, v in rss.items()},
        },
    }

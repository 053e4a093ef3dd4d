"""The backup with files again, to a remote where uploading costs something: loopback WebDAV.

Into a local archive folder the outbox's copy is renamed, so ``capture_files`` measures downloads
and bookkeeping, not uploads. Here the archive is ``rclone serve webdav`` on 127.0.0.1 (the remote
the tests use), and both contenders upload to it:

* ``helix`` -- ``!backup`` of a channel of ``files`` attachments, ``total_mib`` in all, by the bot
  on the loopback Discord with its default settings (as ``capture_files``), until the outbox drained;
* ``plain`` -- ``curl`` downloading the same files one after another, then one ``rclone copy`` of
  the folder to the same server (the daemon's binary and flags).

Each round gets a fresh server. The figure is reported, with no goal of its own: it shows where a
real remote puts the cost (every request to a WebDAV server waits for rclone's pacer, and an
archived file takes several: upload under a temporary name, move into place, check).
"""

from __future__ import annotations

import asyncio
import shutil
import time

from bench.capture_files import _SNOWFLAKES, _backup, _channel, _flush, _guild, _make_files
from bench.stats import alternate, median, ratios, spread, summary
from bench.tools import daemon_flags, run_timed, tool_env
from bench.workload import MIB, remove, scratch
from sync import SyncService, SyncSettings
from tests.support.cdn import CdnProcess, discord_like_history
from tests.support.remotes import LoopbackRemote


async def run(cfg: dict) -> dict:
    count, total, rounds = int(cfg["files"]), int(cfg["total_mib"]) * MIB, int(cfg["rounds"])
    curl = shutil.which("curl")
    with scratch("capture-webdav") as root:
        sources = await asyncio.to_thread(_make_files, root / "src", count, total)
        servers = iter(range(1_000_000))
        phases: dict[str, list[float]] = {"download": [], "copy": []}
        with discord_like_history():
            async with CdnProcess(root / "cdn") as cdn:
                urls = [(cdn.attachment_file(_SNOWFLAKES, 1, src)["url"], src.name) for src in sources]

                def served() -> LoopbackRemote:
                    return LoopbackRemote(kind="webdav", root=root / f"served-{next(servers)}").start()

                async def helix() -> float:
                    remote = await asyncio.to_thread(served)
                    data_dir = root / "helix"
                    try:
                        biggest = max(p.stat().st_size for p in sources)
                        async with _guild(data_dir, biggest, archive=remote.archive,
                                          extra_env=remote.env()) as bot:
                            channel_id = await _channel(bot, cdn, "files", sources)
                            await _flush()
                            t0 = time.perf_counter()
                            row = await _backup(bot, channel_id)
                            took = time.perf_counter() - t0
                        assert row.files == count, row
                        return took
                    finally:
                        await asyncio.to_thread(remote.stop)
                        await asyncio.to_thread(remove, data_dir)

                async def plain() -> float:
                    remote = await asyncio.to_thread(served)
                    fetched = root / "plain-download"
                    try:
                        async with SyncService(SyncSettings(data_dir=root / "tools", archive=remote.archive,
                                                            extra_env=remote.env())) as svc:
                            rclone, flags, env = svc._daemon.binary or "rclone", daemon_flags(svc._daemon.argv()), \
                                tool_env(svc)
                        await asyncio.to_thread(fetched.mkdir, parents=True, exist_ok=True)
                        argv = [curl or "curl", "--silent", "--show-error", "--fail"]
                        for url, name in urls:
                            argv += ["--output", str(fetched / name), url]
                        await _flush()
                        download = await run_timed(argv)
                        copy = await run_timed([rclone, "copy", str(fetched), f"{remote.archive}plain", *flags], env)
                        phases["download"].append(download)
                        phases["copy"].append(copy)
                        return download + copy
                    finally:
                        await asyncio.to_thread(remote.stop)
                        await asyncio.to_thread(remove, fetched)

                times = await alternate({"helix": helix, "plain": plain}, rounds)
    phases = {k: v[-rounds:] for k, v in phases.items()}
    files_ratio = ratios(times["helix"], times["plain"])
    return {
        "figures": {"capture_webdav_ratio": median(files_ratio)},
        "spread": {"capture_webdav_ratio": spread(files_ratio)},
        "details": {
            "files": count, "total_mib": total // MIB, "rounds": rounds, "served_by": "rclone serve webdav",
            "times_s": {k: summary(v) for k, v in times.items()},
            "plain_phases_s": {k: summary(v) for k, v in phases.items()},
            "files_ratio": [round(x, 3) for x in files_ratio],
        },
    }

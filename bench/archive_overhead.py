"""Figures 1, 3 and part of 6: one large file through SyncService.archive versus the raw tools.

Local remote (a folder) contenders, alternated round by round on the same source file:

* ``helix``    -- ``SyncService.archive`` (warm daemon), with the 5 ms ticker measuring loop lag
                 and peak RSS;
* ``outbox``   -- the same with the file's SHA-256 passed in, as the outbox does (it hashed the
                 file when it was queued);
* ``copyfile`` -- one raw ``operations/copyfile`` rc call to the SyncService's own daemon: the
                 honest anchor for what archiving adds over rclone's own copy (no process start);
* ``rclone``   -- a plain ``rclone copyto`` process with the daemon's flags, awaited;
* ``cp``       -- the physical floor;
* ``blocking`` -- the same ``rclone copyto`` run with ``subprocess.run`` inside the loop, ticker on:
                 the loop lag a blocking bot would show;
* ``idle``     -- the ticker alone for a moment: this machine's own noise floor.

WebDAV (``rclone serve webdav`` on 127.0.0.1, no bwlimit): ``helix`` versus ``rclone``.
Between runs the destination is deleted and dirty pages are flushed (``sync``), untimed.
Before the large rounds the same archive is run on a file 4x smaller, to show that the peak
RSS does not follow the file size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path

from bench.stats import alternate, median, ratios, spread, summary
from bench.ticker import Ticker, rss_bytes
from bench.tools import copyto_argv, run_blocking, run_timed, tool_env
from bench.workload import MIB, random_file, remove, scratch
from sync import NotFoundError, SyncService, SyncSettings
from tests.support.remotes import LoopbackRemote

REL = "bench/big.bin"
IDLE_S = 0.5


async def _flush() -> None:
    await asyncio.to_thread(os.sync)


class Lags:
    """Per-run loop-lag figures and RSS peaks of the contenders that run a ticker."""

    def __init__(self) -> None:
        self.max_ms: dict[str, list[float]] = {}
        self.p99_ms: dict[str, list[float]] = {}
        self.peak_rss: list[int] = []
        self.growth: list[int] = []  # peak during the run minus RSS when it began

    def add(self, name: str, ticker: Ticker) -> None:
        self.max_ms.setdefault(name, []).append(ticker.max_ms)
        self.p99_ms.setdefault(name, []).append(ticker.p99_ms)


def _helix(svc: SyncService, src: Path, size: int, lags: Lags, name: str = "helix", sha256: str | None = None):
    async def run() -> float:
        async with Ticker() as ticker:
            t0 = time.perf_counter()
            result = await svc.archive(src, REL, sha256=sha256)
            seconds = time.perf_counter() - t0
        assert result.size == size
        lags.add(name, ticker)
        lags.peak_rss.append(ticker.peak_rss)
        lags.growth.append(ticker.peak_rss - ticker.start_rss)
        return seconds
    return run


async def _local(src: Path, size: int, quarter: Path, root: Path, rounds: int, quarter_rounds: int) -> dict:
    settings = SyncSettings(data_dir=root / "local")
    async with SyncService(settings) as svc:
        dst = Path(svc.remote.root.fs) / REL
        argv = copyto_argv(svc, src, REL)
        env = tool_env(svc)
        lags = Lags()
        rss_start = rss_bytes()

        async def clear() -> None:
            await asyncio.to_thread(remove, dst.parent)
            await _flush()

        # The 4x smaller file first: Python rarely gives memory back, so a peak that followed the
        # file size would show as the large file's peak standing above this one.
        small = Lags()
        await alternate({"helix": _helix(svc, quarter, size // 4, small)}, quarter_rounds, between=clear)

        async def rclone() -> float:
            async with Ticker() as ticker:
                seconds = await run_timed(argv, env)
            lags.add("rclone", ticker)
            return seconds

        async def copyfile() -> float:
            # The very daemon Helix drives (same process, flags, priority and warm caches), so
            # the ratio is what Helix's policy costs, not a difference between two rclones.
            # The ticker runs here too, as for every contender awaited on the loop: it costs them all alike.
            async with Ticker() as ticker:
                t0 = time.perf_counter()
                await svc._rc.call("operations/copyfile", {"srcFs": str(src.parent), "srcRemote": src.name,
                                                           "dstFs": svc.remote.root.fs, "dstRemote": REL},
                                   timeout_s=3600.0)
                seconds = time.perf_counter() - t0
            lags.add("copyfile", ticker)
            return seconds

        async def cp() -> float:
            await asyncio.to_thread(dst.parent.mkdir, parents=True, exist_ok=True)
            return await run_timed([shutil.which("cp") or "cp", str(src), str(dst)])

        async def blocking() -> float:
            async with Ticker() as ticker:
                seconds = run_blocking(argv, env)  # on purpose: the reference a blocking bot would show
            lags.add("blocking", ticker)
            return seconds

        async def idle() -> float:
            async with Ticker() as ticker:
                await asyncio.sleep(IDLE_S)
            lags.add("idle", ticker)
            return IDLE_S

        # The bot's own path: the outbox hashed the file when it was queued and passes that hash on.
        known = await asyncio.to_thread(_sha256, src)
        times = await alternate({"helix": _helix(svc, src, size, lags),
                                 "outbox": _helix(svc, src, size, Lags(), "outbox", sha256=known),
                                 "copyfile": copyfile, "rclone": rclone, "cp": cp, "blocking": blocking, "idle": idle},
                                rounds, between=clear)
    # The warm-up round's lag is not recorded either.
    for d in (lags.max_ms, lags.p99_ms):
        for k in d:
            d[k] = d[k][-rounds:]
    return {
        "times_s": {k: summary(v) for k, v in times.items()},
        "overhead": ratios(times["helix"], times["rclone"]),
        "overhead_outbox": ratios(times["outbox"], times["rclone"]),
        "vs_copyfile": ratios(times["outbox"], times["copyfile"]),
        "vs_copyfile_no_hash": ratios(times["helix"], times["copyfile"]),
        "vs_cp": ratios(times["helix"], times["cp"]),
        "rclone_vs_cp": ratios(times["rclone"], times["cp"]),
        "lag_max_ms": {k: [round(x, 2) for x in v] for k, v in lags.max_ms.items()},
        "lag_p99_ms": {k: [round(x, 2) for x in v] for k, v in lags.p99_ms.items()},
        "rss_start_mb": rss_start / MIB,
        "rss_peak_mb": max(lags.peak_rss[-rounds:]) / MIB,
        "rss_peak_quarter_mb": max(small.peak_rss[-quarter_rounds:]) / MIB,
        "rss_growth_mb": [round(g / MIB, 2) for g in lags.growth[-rounds:]],
        "rss_growth_quarter_mb": [round(g / MIB, 2) for g in small.growth[-quarter_rounds:]],
        "throughput_mib_s": size / MIB / median(times["helix"]),
    }


async def _webdav(src: Path, size: int, root: Path, rounds: int) -> dict:
    remote = LoopbackRemote(kind="webdav", root=root / "served").start()
    try:
        # The production defaults (transfers, timeouts, retries), only the remote differs.
        settings = SyncSettings(archive=remote.archive, data_dir=root / "webdav", extra_env=remote.env())
        async with SyncService(settings) as svc:
            argv = copyto_argv(svc, src, REL)
            env = tool_env(svc)
            lags = Lags()

            async def clear() -> None:
                # Through the server, not behind its back: its directory cache would otherwise still
                # list the file, and a plain copyto would skip it as already there.
                with contextlib.suppress(NotFoundError):
                    await svc.delete(REL)
                await _flush()

            async def rclone() -> float:
                return await run_timed(argv, env)

            times = await alternate({"helix": _helix(svc, src, size, lags), "rclone": rclone}, rounds, between=clear)
    finally:
        remote.stop()
    return {
        "times_s": {k: summary(v) for k, v in times.items()},
        "overhead": ratios(times["helix"], times["rclone"]),
        "lag_max_ms": [round(x, 2) for x in lags.max_ms["helix"][-rounds:]],
        "lag_p99_ms": [round(x, 2) for x in lags.p99_ms["helix"][-rounds:]],
        "throughput_mib_s": size / MIB / median(times["helix"]),
    }


async def run(cfg: dict) -> dict:
    size = int(cfg["size_mib"]) * MIB
    rounds = int(cfg["rounds"])
    with scratch("archive") as root:
        src = await asyncio.to_thread(random_file, root / "src" / "big.bin", size)
        quarter = await asyncio.to_thread(random_file, root / "src" / "quarter.bin", size // 4)
        local = await _local(src, size, quarter, root, rounds, quarter_rounds=max(3, rounds // 2))
        webdav = await _webdav(src, size, root, rounds)
    all_helix_max = local["lag_max_ms"]["helix"] + webdav["lag_max_ms"]
    all_helix_p99 = local["lag_p99_ms"]["helix"] + webdav["lag_p99_ms"]
    # Figures that are distributions: their median is the figure, their p25-p75 its spread.
    samples = {
        "archive_overhead_local": local["overhead"],
        "archive_overhead_local_known_hash": local["overhead_outbox"],
        "archive_overhead_webdav": webdav["overhead"],
        "archive_vs_cp_local": local["vs_cp"],
        "archive_vs_copyfile_local": local["vs_copyfile"],
        "archive_vs_copyfile_local_no_hash": local["vs_copyfile_no_hash"],
        "loop_lag_max_ms": all_helix_max,
        "loop_lag_p99_ms": all_helix_p99,
        "loop_lag_blocking_max_ms": local["lag_max_ms"]["blocking"],
        "loop_lag_rclone_max_ms": local["lag_max_ms"]["rclone"],
        "rclone_vs_cp_local": local["rclone_vs_cp"],
    }
    return {
        "figures": {
            **{key: median(values) for key, values in samples.items()},
            "rss_peak_archive_mb": local["rss_peak_mb"],
            "rss_peak_archive_quarter_mb": local["rss_peak_quarter_mb"],
            "rss_growth_archive_mb": median(local["rss_growth_mb"]),
            "rss_growth_archive_quarter_mb": median(local["rss_growth_quarter_mb"]),
            "loop_lag_worst_ms": max(all_helix_max),
            "loop_lag_idle_max_ms": median(local["lag_max_ms"]["idle"]),
        },
        "spread": {key: spread(values) for key, values in samples.items()},
        "details": {"file_mib": size // MIB, "rounds": rounds, "local": local, "webdav": webdav},
    }


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()

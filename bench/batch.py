"""Figure 2: many small files as one batch (``archive_many``: one rclone job) versus one ``archive`` each.

Local-folder remote, so the figure is Helix's per-operation cost and not a network's. The single
archives may run on a subset (``singles``) and be scaled to the whole count: the README says
when that was done. A third contender, a plain ``rclone copy`` process of the same folder with
the daemon's flags (and ``--no-traverse``, as the batch job sets), shows how close the batch
is to what rclone itself needs for those files.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from bench.stats import alternate, median, ratios, spread, summary
from bench.tools import daemon_flags, run_timed, tool_env
from bench.workload import random_file, remove, scratch
from sync import SyncService, SyncSettings

KIB = 1024


async def run(cfg: dict) -> dict:
    files, size_kib, rounds = int(cfg["files"]), int(cfg["size_kib"]), int(cfg["rounds"])
    singles = min(files, int(cfg.get("singles", files)))
    with scratch("batch") as root:
        def make() -> list[tuple[Path, str]]:
            return [(random_file(root / "src" / f"f{i:04d}.bin", size_kib * KIB), f"batch/f{i:04d}.bin")
                    for i in range(files)]

        pairs = await asyncio.to_thread(make)
        async with SyncService(SyncSettings(data_dir=root / "data")) as svc:
            dest = Path(svc.remote.root.fs) / "batch"

            async def batch() -> float:
                t0 = time.perf_counter()
                results = await svc.archive_many(pairs)
                seconds = time.perf_counter() - t0
                assert len(results) == files
                return seconds

            async def one_by_one() -> float:
                t0 = time.perf_counter()
                for src, rel in pairs[:singles]:
                    await svc.archive(src, rel)
                return (time.perf_counter() - t0) * files / singles

            rclone_argv = [svc._daemon.binary or "rclone", "copy", str(root / "src"), str(dest),
                           *daemon_flags(svc._daemon.argv()), "--no-traverse"]
            env = tool_env(svc)

            async def rclone_dir() -> float:
                return await run_timed(rclone_argv, env)

            async def clear() -> None:
                await asyncio.to_thread(remove, dest)
                await asyncio.to_thread(os.sync)

            times = await alternate({"batch": batch, "singles": one_by_one, "rclone": rclone_dir}, rounds,
                                    between=clear)
    speedups = ratios(times["singles"], times["batch"])
    return {
        "figures": {
            "batch_speedup": median(speedups),
            "batch_files_per_s": files / median(times["batch"]),
            "single_archive_ms": median(times["singles"]) / files * 1000,
            "batch_vs_rclone_copy": median(ratios(times["batch"], times["rclone"])),
        },
        "spread": {"batch_speedup": spread(speedups),
                   "batch_vs_rclone_copy": spread(ratios(times["batch"], times["rclone"]))},
        "details": {"files": files, "size_kib": size_kib, "rounds": rounds, "singles_measured": singles,
                    "scaled": singles < files, "times_s": {k: summary(v) for k, v in times.items()},
                    "speedups": [round(x, 2) for x in speedups]},
    }

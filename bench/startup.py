"""Figure 6: process start to ready (the bot under SimCord, local remote, answering ``!heartbeat``), and its idle RSS.

Each run starts ``python -m bench.ready`` and times it from spawn to its READY line; the bare
interpreter (``python -c pass``) alternates with it as the floor no Python program beats. The
idle RSS is read from /proc of the ready process after a short rest (Python only: the rclone
daemon is a separate process, reported beside it).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from bench.stats import alternate, median, spread, summary
from bench.ticker import rss_bytes
from bench.workload import MIB, scratch

ROOT = Path(__file__).resolve().parents[1]
REST_S = 0.5


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


async def run(cfg: dict) -> dict:
    rounds = int(cfg["rounds"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rss: list[float] = []
    rclone_rss: list[float] = []
    with scratch("startup") as root:
        async def bot() -> float:
            t0 = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.ready", str(root / "data"), cwd=ROOT, env=env,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            assert proc.stdout is not None and proc.stdin is not None
            line = await proc.stdout.readline()
            seconds = time.perf_counter() - t0
            if line.strip() != b"READY":
                proc.kill()
                await proc.wait()
                raise RuntimeError(f"the bot did not become ready: {line!r}")
            await asyncio.sleep(REST_S)
            rss.append(rss_bytes(proc.pid) / MIB)
            rclone_rss.append(sum(rss_bytes(c) for c in _children(proc.pid)) / MIB)
            proc.stdin.close()
            await proc.wait()
            return seconds

        async def bare() -> float:
            t0 = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
            await proc.wait()
            return time.perf_counter() - t0

        times = await alternate({"bot": bot, "python": bare}, rounds)
    n = len(times["bot"])
    return {
        "figures": {
            "startup_s": median(times["bot"]),
            "startup_python_floor_s": median(times["python"]),
            "rss_idle_mb": median(rss[-n:]),
            "rss_idle_rclone_mb": median(rclone_rss[-n:]),
        },
        "spread": {"startup_s": spread(times["bot"]), "rss_idle_mb": spread(rss[-n:])},
        "details": {"rounds": rounds, "times_s": {k: summary(v) for k, v in times.items()}},
    }

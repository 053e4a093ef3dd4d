"""``python -m bench.variants daemon|nohash|batch [rounds]``: measure a proposed change to sync/ before it is made.

Each variant is today's source of one ``sync`` module with one exact-text patch applied, loaded
as a separate module; it runs side by side with the unpatched code, alternating round by
round like every other figure. A patch whose text no longer matches fails loudly: the change
was made, or the code moved. The variants (their measured effect is in bench/README.md):

* ``daemon``: start ``rclone rcd`` in its own process group (not its own session) at nice 10,
  so the bot's event loop gets the CPU first when rclone and the hashing saturate the cores;
  compared on a 256 MiB local archive with the loop-lag ticker, and a plain ``rclone copyto``.
* ``nohash``: not a proposal, a price tag: ``archive`` without its local SHA-256 pass (a second
  full read of the file), to show what that pass costs next to a plain ``rclone copyto``.
* ``batch``: ``archive_many`` resolves its paths and hashes its files in one worker-thread
  call each, instead of one ``asyncio.to_thread`` per file.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import types
from pathlib import Path

from bench.stats import median, ratios
from bench.ticker import Ticker
from bench.tools import copyto_argv, run_timed, tool_env
from bench.workload import MIB, random_file, remove, scratch
from sync.rc_client import RcClient
from sync.service import SyncService
from sync.settings import SyncSettings

ROOT = Path(__file__).resolve().parents[1]

PATCHES = {
    "daemon": ("sync/daemon.py", [(
        '''        kwargs: dict = {"start_new_session": True}
        if sys.platform.startswith("linux"):
            kwargs["preexec_fn"] = _die_with_parent
''',
        '''        kwargs: dict = {"process_group": 0}
        if sys.platform.startswith("linux"):
            kwargs["preexec_fn"] = _die_with_parent_and_yield

''')], '''

def _die_with_parent_and_yield() -> None:
    _die_with_parent()
    os.nice(10)
'''),
    "nohash": ("sync/service.py", [(
        "        hashing = asyncio.create_task(hash_file(src, types))\n",
        "        hashing = asyncio.create_task(_no_hash(types))\n",
    )], '''

async def _no_hash(types: tuple[str, ...]) -> dict[str, str]:
    return {t: "" for t in types}
'''),
    "batch": ("sync/service.py", [(
        "        cleaned = [(await asyncio.to_thread(p.resolve), r) for p, r in cleaned]\n",
        "        cleaned = await asyncio.to_thread(lambda: [(p.resolve(), r) for p, r in cleaned])\n",
    ), (
        "                    hashing = asyncio.gather(*(hash_file(src) for src, _ in cleaned))\n",
        "                    hashing = asyncio.ensure_future(asyncio.to_thread(\n"
        "                        lambda: [hash_file_sync(src) for src, _ in cleaned]))\n",
    ), (
        "from sync.hashing import HASHLIB_TYPES, hash_file\n",
        "from sync.hashing import HASHLIB_TYPES, hash_file, hash_file_sync\n",
    )], ""),
}


def patched(name: str) -> types.ModuleType:
    path, edits, extra = PATCHES[name]
    source = (ROOT / path).read_text()
    for old, new in edits:
        if source.count(old) != 1:
            raise SystemExit(f"{path} no longer contains the text this variant patches; was the change made?\n{old}")
        source = source.replace(old, new)
    module = types.ModuleType(f"bench_variant_{name}")
    module.__file__ = str(ROOT / path)
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source + extra, str(ROOT / path), "exec"), module.__dict__)  # noqa: S102 - our own source
    return module


async def _large(which: str, rounds: int) -> None:
    """One 256 MiB file to the local folder: today's archive, the variant's, and a plain rclone copyto."""
    variant = patched(which)
    with scratch("variant") as root:
        src = await asyncio.to_thread(random_file, root / "big.bin", 256 * MIB)
        old = SyncService(SyncSettings(data_dir=root / "old"))
        if which == "daemon":
            new = SyncService(SyncSettings(data_dir=root / "new"))
            new.daemon = variant.RcloneDaemon(new.settings)
            new.rc = RcClient(new.daemon, new.root.display)
        else:
            new = variant.SyncService(SyncSettings(data_dir=root / "new"))
        async with old, new:
            times: dict[str, list[float]] = {"today": [], "variant": [], "rclone": []}
            lags: dict[str, list[float]] = {k: [] for k in times}
            names = list(times)
            for r in range(rounds + 1):
                for name in names[r % 3:] + names[:r % 3]:
                    svc = new if name == "variant" else old
                    async with Ticker() as ticker:
                        t0 = time.perf_counter()
                        if name == "rclone":
                            await run_timed(copyto_argv(old, src, "v/big.bin"), tool_env(old))
                        else:
                            await svc.archive(src, "v/big.bin")
                        seconds = time.perf_counter() - t0
                    if r:
                        times[name].append(seconds)
                        lags[name].append(ticker.max_ms)
                    await asyncio.to_thread(remove, Path(svc.root.fs) / "v")
                    await asyncio.to_thread(os.sync)
        for name in names:
            print(f"{name:8} ÷ rclone copyto {median(ratios(times[name], times['rclone'])):.3f}   "
                  f"loop lag max: median {median(lags[name]):.1f} ms, worst {max(lags[name]):.1f} ms")


async def _batch(rounds: int) -> None:
    variant = patched("batch")
    with scratch("variant") as root:
        pairs = await asyncio.to_thread(lambda: [(random_file(root / "src" / f"f{i:04d}.bin", 64 * 1024),
                                                  f"batch/f{i:04d}.bin") for i in range(500)])
        old = SyncService(SyncSettings(data_dir=root / "old"))
        new = variant.SyncService(SyncSettings(data_dir=root / "new"))
        async with old, new:
            times: dict[str, list[float]] = {"today": [], "variant": []}
            for r in range(rounds + 1):
                for name in (("today", "variant") if r % 2 else ("variant", "today")):
                    svc = new if name == "variant" else old
                    t0 = time.perf_counter()
                    await svc.archive_many(pairs)
                    if r:
                        times[name].append(time.perf_counter() - t0)
                    await asyncio.to_thread(remove, Path(svc.root.fs) / "batch")
                    await asyncio.to_thread(os.sync)
        print(f"archive_many of 500 × 64 KiB: today {median(times['today']) * 1000:.0f} ms, "
              f"variant {median(times['variant']) * 1000:.0f} ms, "
              f"variant ÷ today {median(ratios(times['variant'], times['today'])):.3f}")


def main(argv: list[str]) -> int:
    from bot import logs

    logs.configure(level="WARNING", fmt="json", stream=sys.stderr)
    which, rounds = argv[0], int(argv[1]) if len(argv) > 1 else 9
    asyncio.run(_batch(rounds) if which == "batch" else _large(which, rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

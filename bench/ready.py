"""``python -m bench.ready DATA_DIR``: start Helix under SimCord on the local remote, say READY, wait.

The parent (``bench.startup``) times process start to the READY line, reads this process's
resident memory while it idles, then closes stdin to stop it. Nothing here is measured by
itself: the clock is the parent's, so interpreter start and every import are counted.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path


async def main(data_dir: Path) -> None:
    from bot.settings import Settings
    from bot.sim.demo import demo_settings
    from bot.sim.world import simulated_guild
    from runtime import logs

    logs.configure(level="WARNING", fmt="json", stream=sys.stderr)
    settings = replace(demo_settings(Settings(), data_dir), ritual_cooldown_s=0)
    async with simulated_guild(settings) as world:
        lines = await world.say(world.member("alice"), "!heartbeat")
        print("READY" if any("alive" in line for line in lines) else "NOT-READY", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))

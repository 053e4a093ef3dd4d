"""Figure 5: the ritual renderer alone (``render.ritual_image.render``), in this thread, for 108, 1000 and 10000 steps.

The step counts alternate round by round; each round's render is timed on its own with
``perf_counter``. No Discord and no I/O: this is the CPU cost the bot moves to a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bench.stats import alternate, median, spread, summary
from render.ritual_image import RitualSpec, render, seed_for

STEPS = (108, 1000, 10000)


async def run(cfg: dict) -> dict:
    rounds = int(cfg["rounds"])
    now = datetime.now(UTC)

    def contender(steps: int):
        spec = RitualSpec(steps=steps, seed=seed_for(steps, now))

        async def once() -> float:
            t0 = time.perf_counter()
            art = render(spec, created_at=now, version="bench", host="bench")
            seconds = time.perf_counter() - t0
            assert art.png
            await asyncio.sleep(0)
            return seconds
        return once

    times = await alternate({str(s): contender(s) for s in STEPS}, rounds)
    return {
        "figures": {f"ritual_render_ms_{s}": median(times[str(s)]) * 1000 for s in STEPS},
        "spread": {f"ritual_render_ms_{s}": [x * 1000 for x in spread(times[str(s)])] for s in STEPS},
        "details": {"rounds": rounds, "times_ms": {k: summary([x * 1000 for x in v], 2) for k, v in times.items()}},
    }

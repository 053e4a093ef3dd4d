"""Figure 4: command round trips under SimCord, the real bot answering a simulated guild.

``!heartbeat`` and ``!status`` alternate, hundreds of times each; ``!ritual 108`` (cooldown off)
is slotted in at even intervals, so all three see the same moments of machine noise. A round
trip is ``World.say``: the message goes in, discord.py parses and dispatches it, the command
runs, and its reply reaches the (simulated) Discord API. For ``!ritual`` the end is its last
message request: the edit that says the PNG and manifest are archived.

``World.say`` itself returns only once SimCord has *settled* the bot, polling every 50 ms
while a timer or thread callback is outstanding; that wait is the simulator's, not the bot's,
so the round trip is stamped when each request reaches the simulated API (``StampedLog``).
``World.say`` times are kept in the details for comparison. SimCord virtualises
``time.monotonic``: the clock here is ``perf_counter``.
"""

from __future__ import annotations

import time
from dataclasses import replace

from bench.stats import median, percentile, spread, summary
from bench.workload import scratch
from bot.settings import Settings
from bot.sim.demo import demo_settings
from bot.sim.transcript import is_message
from bot.sim.world import simulated_guild

WARMUP = 5


class StampedLog(list):
    """SimCord's request log (a list it appends to), with the ``perf_counter`` of each append."""

    def __init__(self, entries: list) -> None:
        super().__init__(entries)
        self.stamps = [0.0] * len(entries)

    def append(self, entry) -> None:  # noqa: ANN001 - SimCord's HttpLogEntry
        self.stamps.append(time.perf_counter())
        super().append(entry)

    def message_stamps(self, start: int) -> list[float]:
        """When each message post or edit since request ``start`` reached the API."""
        return [t for e, t in zip(self[start:], self.stamps[start:], strict=True)
                if is_message(e.method, e.path)]


async def run(cfg: dict) -> dict:
    n, rituals = int(cfg["commands"]), int(cfg["rituals"])
    rtt: dict[str, list[float]] = {"heartbeat": [], "status": [], "ritual": []}
    said: dict[str, list[float]] = {"heartbeat": [], "status": [], "ritual": []}
    failures: list[str] = []
    with scratch("commands") as root:
        settings = replace(demo_settings(Settings(), root / "data"), ritual_cooldown_s=0)
        async with simulated_guild(settings) as world:
            alice = world.member("alice")
            backend = world.env.backend
            log = backend.http_requests = StampedLog(backend.http_requests)

            async def say(kind: str, text: str, expect: str, record: bool = True) -> None:
                start = len(log)
                t0 = time.perf_counter()
                lines = await world.say(alice, text)
                t_said = time.perf_counter()
                stamps = log.message_stamps(start)
                if expect not in "\n".join(lines) or not stamps:
                    failures.append(f"{text}: {lines[-1:] or 'no answer'}")
                    return
                if record:
                    # The reply for a quick command; the final edit ("archived") for the ritual.
                    rtt[kind].append(((stamps[-1] if kind == "ritual" else stamps[0]) - t0) * 1000)
                    said[kind].append((t_said - t0) * 1000)

            for _ in range(WARMUP):
                await say("heartbeat", "!heartbeat", "alive", record=False)
                await say("status", "!status", "Helix status", record=False)
            await say("ritual", "!ritual 108", "archived", record=False)
            every = max(1, n // max(1, rituals))
            pair = (("heartbeat", "!heartbeat", "alive"), ("status", "!status", "Helix status"))
            for i in range(n):
                for command in pair if i % 2 == 0 else pair[::-1]:  # alternate which goes first
                    await say(*command)
                if i % every == every - 1 and len(rtt["ritual"]) < rituals:
                    await say("ritual", "!ritual 108", "archived")
            while len(rtt["ritual"]) < rituals:
                await say("ritual", "!ritual 108", "archived")
    if failures:
        raise RuntimeError(f"{len(failures)} commands did not answer as expected, e.g. {failures[:3]}")
    return {
        "figures": {
            "heartbeat_rtt_p50_ms": median(rtt["heartbeat"]),
            "heartbeat_rtt_p99_ms": percentile(rtt["heartbeat"], 99),
            "status_rtt_p50_ms": median(rtt["status"]),
            "status_rtt_p99_ms": percentile(rtt["status"], 99),
            "ritual_e2e_ms": median(rtt["ritual"]),
        },
        "spread": {"ritual_e2e_ms": spread(rtt["ritual"])},
        "details": {"rtt_ms": {k: summary(v, 2) for k, v in rtt.items()},
                    "world_say_ms": {k: summary(v, 2) for k, v in said.items()}},
    }

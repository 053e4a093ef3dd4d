"""``python -m bot play``: the demo's simulated guild, interactive.

Type a message as a user (``!ritual 42``, ``/ritual steps:7``); ``as NAME`` switches who is
typing (``owner`` is the bot's owner and an admin); ``quit`` or Ctrl-D leaves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.settings import Settings
from bot.sim.demo import demo_settings
from bot.sim.world import simulated_guild

HELP = ("Type as a user: !status, !heartbeat, !ritual 42, /ritual steps:7, !testmega (admins), !outbox (owner).\n"
        "'as NAME' switches user ('owner' is the owner and an admin), 'quit' leaves.")


async def run_play(base: Settings, data_dir: Path | None = None) -> int:
    settings = demo_settings(base, data_dir or Path(base.sync.data_dir) / "play")
    # A typo is a normal part of playing: user errors must not be re-raised when the session ends.
    async with simulated_guild(settings, check_errors=False) as world:
        await world.say(world.owner, "!sync")
        print(HELP)
        who = "alice"
        while True:
            try:
                line = await asyncio.to_thread(input, f"{who} › ")
            except EOFError:
                print()
                break
            line = line.strip()
            if not line:
                continue
            if line in ("quit", "exit"):
                break
            if line.startswith("as "):
                who = line[3:].strip() or who
                continue
            actor = world.owner if who == "owner" else world.member(who)
            try:
                lines = await world.say(actor, line)
            except Exception as exc:  # a typo in a slash command name must not end the session
                print(f"  (simulated Discord refused that: {exc})")
                continue
            print("\n".join(lines) if lines else "  (no answer)")
    return 0

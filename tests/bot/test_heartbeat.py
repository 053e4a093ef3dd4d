"""The periodic heartbeat: a record on the archive remote every few minutes, a post in its channel,
and a remote that is down delays it without ending the loop."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from bot.sim.world import simulated_guild
from tests.support.remotes import LoopbackRemote
from tests.support.waiting import wait_until
from tests.support.world import bot_settings, drained

ROOT = Path(__file__).resolve().parents[2]


async def test_the_periodic_heartbeat_lands_posts_and_survives_a_remote_outage(webdav: LoopbackRemote,
                                                                               data_dir: Path):
    record_path = webdav.storage / "heartbeat" / f"{socket.gethostname()}.json"
    settings = bot_settings(webdav.settings(data_dir, retries=0), heartbeat_minutes=1)
    async with simulated_guild(settings) as world:
        beats = world.guild.create_text_channel("heartbeats")
        world.bot.settings = replace(world.bot.settings, heartbeat_channel_id=beats.id)
        await drained(world)  # the first beat runs as soon as the bot is ready
        assert record_path.is_file()

        await world.env.advance_time(61)  # one interval later: the next beat, now posted to its channel
        await drained(world)
        record = json.loads(record_path.read_text())
        assert record["host"] == socket.gethostname() and record["version"] == world.bot.version
        assert "heartbeat from" in beats.last_message.content

        webdav.stop()
        await world.env.advance_time(61)

        async def kept() -> bool:
            counts = await world.archive.outbox.counts()
            return counts.pending + counts.uploading >= 1

        await wait_until(kept, what="the beat made while down, kept in the outbox")
        lines = await world.say(world.member("alice"), "!heartbeat")
        assert "alive" in lines[0]

        webdav.start()
        world.archive.worker.wake()
        await world.archive.outbox.retry("all")
        await drained(world)
        assert json.loads(record_path.read_text())["at"] > record["at"]
        assert world.bot.get_cog("Heartbeat").periodic.is_running()


def test_play_is_the_same_guild_interactively(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELIX_", "DISCORD_", "RCLONE_CONFIG"))}
    env["HELIX_DATA_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "bot", "play"], cwd=ROOT, env=env, input="!heartbeat\n!ritual abc\n"
                         "as owner\n!testmega\nquit\n", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "alive" in out.stdout
    assert "`steps` must be a whole number" in out.stdout
    assert "Archive round trip ok" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr

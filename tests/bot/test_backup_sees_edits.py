"""A message archived, then edited while Helix heard nothing: the next backup that pages it keeps the edit."""

from __future__ import annotations

from pathlib import Path

from bot.sim.world import simulated_guild
from capture import CaptureSettings
from sync.settings import SyncSettings
from tests.support.capture import backup_finished, cdn, segment_lines, storage  # noqa: F401
from tests.support.world import bot_settings


def settings(data_dir: Path):
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    return bot_settings(sync, capture=CaptureSettings(watch_flush_s=0.2))


async def test_an_edit_made_while_helix_was_away_is_kept_by_the_next_backup(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = world.guild.create_text_channel("general")
        msg = be.create_message(general.id, world.member("alice").id, "meet at noon")
        await env.settle()
        await world.say(world.owner, f"!archive https://discord.com/channels/{world.guild.id}/{general.id}/{msg.id}")
        assert (await world.capture.catalogue.call("message", msg.id))["content"] == "meet at noon"

        stored = be.messages[general.id][msg.id]
        stored.content = "meet at two"  # edited while Helix was offline: no MESSAGE_UPDATE reached it
        stored.edited_timestamp = be.now_iso()
        await world.say(world.owner, f"!backup <#{general.id}>")
        row = await backup_finished(world, general.id)
        assert row.state == "done" and row.scanned == 1 and row.archived == 0, row

        record = await world.capture.catalogue.call("message", msg.id)
        assert record["content"] == "meet at two" and record["revision"] == 1, record
        lines = segment_lines(storage(world), world.guild.id, general.id)
        assert sorted((line["type"], line["content"]) for line in lines) == [("message", "meet at noon"),
                                                                             ("revision", "meet at two")], lines

        # paged once more, the same edit is not a second revision
        await world.capture.catalogue.call("cap_cursors", {general.id: 0})
        await world.say(world.owner, f"!backup <#{general.id}>")
        await backup_finished(world, general.id, count=2)
        assert (await world.capture.catalogue.call("message", msg.id))["revision"] == 1

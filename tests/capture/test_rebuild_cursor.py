"""A rebuilt channel's cursor is the one its ``channel.json`` tells: what was archived of a channel
is not how far its history was backed up, so the next backup still fetches what lies before."""

from __future__ import annotations

import json
from pathlib import Path

from bot.helix import HelixBot
from bot.sim.world import World, simulated_guild
from capture import CaptureSettings
from sync import SyncSettings
from tests.capture.test_rebuild import restarted_on_a_fresh_volume
from tests.support.capture import backup_finished, cdn, segment_lines, storage  # noqa: F401
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until
from tests.support.world import bot_settings

KEPT = "the one worth keeping"
OLDER = [f"older {i}" for i in range(3)]


def link(world: World, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{world.guild.id}/{channel_id}/{message_id}"


def manifest(world: World, channel_id: int) -> Path:
    return storage(world) / f"discord/{world.guild.id}/{channel_id}/channel.json"


async def one_message_archived(world: World) -> int:
    """#general holds three older messages and a newer one; the owner archives only the newer one.
    Returns #general's id."""
    be, alice = world.env.backend, world.member("alice")
    general = world.guild.create_text_channel("general")
    for text in OLDER:
        be.create_message(general.id, alice.id, text, broadcast=False)
    kept = be.create_message(general.id, alice.id, KEPT, broadcast=False)
    await world.env.settle()
    await world.say(world.owner, f"!archive {link(world, general.id, kept.id)}")
    assert await world.archive.worker.drain(30)
    assert json.loads(manifest(world, general.id).read_text())["cursor"] == "0"  # none of the history was paged
    return general.id


async def rebuilt(bot: HelixBot) -> None:
    cog = bot.get_cog("Reindex")
    await wait_until(lambda: cog.progress.state in ("done", "failed"), 60, "the rebuild")
    assert cog.progress.state == "done", cog.progress


async def backed_up(world: World, channel_id: int) -> list[str]:
    """The owner backs the channel up; what its segments on the remote hold, one entry per message."""
    await world.say(world.owner, f"!backup <#{channel_id}>")
    await backup_finished(world, channel_id)
    return sorted(r["content"] for r in segment_lines(storage(world), world.guild.id, channel_id)
                  if r.get("type", "message") == "message")


def settings(data_dir: Path):
    return bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05),
                        capture=CaptureSettings(watch_flush_s=0.2))


async def test_a_channel_with_one_message_archived_is_backed_up_whole_after_a_rebuild(data_dir: Path,
                                                                                      cdn: LocalCdn):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        general = await one_message_archived(world)
        await rebuilt(await restarted_on_a_fresh_volume(world))  # the volume is lost: rebuilt from the remote
        assert await backed_up(world, general) == sorted([*OLDER, KEPT])


async def test_a_channel_whose_channel_json_never_landed_is_backed_up_whole_after_a_rebuild(
        data_dir: Path, cdn: LocalCdn):  # noqa: F811
    """Its segments alone cannot say how far its history was paged: the next backup pages all of it,
    skipping the messages it already holds."""
    async with simulated_guild(settings(data_dir)) as world:
        general = await one_message_archived(world)
        manifest(world, general).unlink()  # lost with the volume before its upload
        await rebuilt(await restarted_on_a_fresh_volume(world))
        assert await backed_up(world, general) == sorted([*OLDER, KEPT])


async def test_a_reindex_leaves_a_channel_with_one_message_archived_to_be_backed_up_whole(
        data_dir: Path, cdn: LocalCdn):  # noqa: F811
    async with simulated_guild(settings(data_dir)) as world:
        general = await one_message_archived(world)
        await world.say(world.owner, "!reindex")  # the catalogue was never lost
        await rebuilt(world.bot)
        assert await backed_up(world, general) == sorted([*OLDER, KEPT])

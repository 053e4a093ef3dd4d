"""What Discord never delivered to a watch (Helix was down, the gateway was out, a backup held the
channel) is caught up, and no message heard live in the meantime makes the catch-up skip it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import discord
import structlog
from simcord.backend.models.channel import Overwrite
from simcord.enums import OverwriteType

from bot.sim.world import World, simulated_guild
from tests.bot.test_threads_watch import contents, watch_settings
from tests.capture.test_rebuild import connected_again
from tests.support.capture import backup_finished, cdn  # noqa: F401
from tests.support.waiting import wait_until


async def watched(world: World, name: str):
    channel = world.guild.create_text_channel(name)
    world.env.backend.create_message(channel.id, world.member("alice").id, "before the watch", broadcast=False)
    await world.env.settle()
    await world.say(world.owner, f"!watch <#{channel.id}>")
    await backup_finished(world, channel.id)
    return channel


async def test_a_message_heard_before_the_catch_up_after_a_restart_does_not_hide_the_downtime(data_dir: Path):
    async with simulated_guild(watch_settings(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = await watched(world, "news")
        await world.capture.close()  # Helix is down: Discord goes on without it
        for text in ("posted while down", "and another"):
            be.create_message(news.id, alice.id, text, broadcast=False)
        await world.capture.start()
        # The first message heard live comes before the scheduler has started the catch-up.
        be.create_message(news.id, alice.id, "heard live")
        await world.env.settle()
        await wait_until(lambda: "heard live" in contents(world, news.id) or None, 30, "the live message")
        await connected_again(world)
        want = ["before the watch", "posted while down", "and another", "heard live"]
        await wait_until(lambda: sorted(contents(world, news.id)) == sorted(want), 30,
                         lambda: f"the downtime caught up: {contents(world, news.id)}")


async def test_what_was_posted_while_the_gateway_was_out_is_caught_up_on_the_new_session(data_dir: Path):
    async with simulated_guild(watch_settings(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = await watched(world, "news")
        be.create_message(news.id, alice.id, "heard live")
        await world.env.settle()
        await wait_until(lambda: "heard live" in contents(world, news.id) or None, 30, "the live message")

        want = ["before the watch", "heard live"]
        for outage in ("one outage", "another outage"):
            be.create_message(news.id, alice.id, f"posted during {outage}", broadcast=False)  # never delivered
            world.bot.dispatch("ready")  # a new gateway session: Discord replays nothing of the gap
            be.create_message(news.id, alice.id, f"after {outage}")
            await world.env.settle()
            want += [f"posted during {outage}", f"after {outage}"]
            await wait_until(lambda want=want: sorted(contents(world, news.id)) == sorted(want), 30,
                             lambda: f"the outage caught up: {contents(world, news.id)}")


async def test_watching_a_channel_while_its_backup_runs_catches_its_threads_up_after_it(data_dir: Path, cdn):  # noqa: F811
    async with simulated_guild(watch_settings(data_dir)) as world:
        env, be, alice = world.env, world.env.backend, world.member("alice")
        launch = world.guild.create_text_channel("launch")
        files = [cdn.attachment(env, launch.id, "big.bin", os.urandom(1000))]
        be.create_message(launch.id, alice.id, "the plan", attachments=files, broadcast=False)
        countdown = be.create_thread(launch.id, "countdown", alice.id)
        be.create_message(countdown.id, alice.id, "T minus 10", broadcast=False)
        asked, let_go = cdn.hold(files[0]["url"])
        await env.settle()
        await world.owner.send(world.channel, f"!backup <#{launch.id}>")  # the channel alone, not its threads
        await wait_until(asked.is_set, 30, "the backup downloads the file")
        await world.say(world.owner, f"!watch <#{launch.id}>")
        let_go.set()
        await backup_finished(world, launch.id, count=2)
        assert contents(world, countdown.id) == ["T minus 10"]
        be.create_message(launch.id, alice.id, "new and live")
        await env.settle()
        await wait_until(lambda: "new and live" in contents(world, launch.id) or None, 30, "the live message")



def retrying_soon(data_dir: Path):
    settings = watch_settings(data_dir)
    return replace(settings, capture=replace(settings.capture, catch_up_retry_s=0.2))


async def catch_up_refused(world: World, channel_id: int, status: int):
    """A new gateway session whose catch-up Discord answers with ``status``; the failed catch-up."""
    world.env.inject_error("GET", f"/channels/{channel_id}/messages*", status=status, message="refused", times=None)
    world.bot.dispatch("ready")
    await world.env.settle()

    async def failed():
        rows = await world.capture.catalogue.call("backups", limit=20)
        return next((r for r in rows if r.kind == "catchup" and r.state == "failed"), None)

    return await wait_until(failed, 30, "the catch-up that Discord failed")


async def test_a_catch_up_discord_failed_is_asked_for_again_without_waiting_for_the_next_gap(data_dir: Path):
    async with simulated_guild(retrying_soon(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = await watched(world, "news")
        be.create_message(news.id, alice.id, "posted during the outage", broadcast=False)  # never delivered
        await catch_up_refused(world, news.id, 503)  # Discord is back, but fails its history for a while
        be.faults.clear()  # Discord answers again; no new gap comes
        await wait_until(lambda: "posted during the outage" in contents(world, news.id) or None, 30,
                         lambda: f"the outage caught up: {contents(world, news.id)}")


async def test_a_catch_up_refused_for_lost_access_waits_for_someone_to_act(data_dir: Path):
    """Trying again changes nothing until an admin gives Helix its access back: no retries, and
    the next gap (or a !backup) asks again."""
    async with simulated_guild(retrying_soon(data_dir)) as world:
        news = await watched(world, "news")
        with structlog.testing.capture_logs() as logs:
            row = await catch_up_refused(world, news.id, 403)
            await wait_until(lambda: [e for e in logs if e["event"] == "capture_backup_finished"] or None, 30,
                             "the catch-up's end")  # a retry would be asked for at once after it
        assert "lost access" in (row.error or ""), row
        assert not [e for e in logs if e["event"] == "capture_catch_up_retry"], logs


async def test_a_long_outage_leaves_one_failed_catch_up_on_record_not_one_per_try(data_dir: Path):
    async with simulated_guild(retrying_soon(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = await watched(world, "news")
        be.create_message(news.id, alice.id, "posted during the outage", broadcast=False)
        with structlog.testing.capture_logs() as logs:
            await catch_up_refused(world, news.id, 503)
            await wait_until(lambda: len([e for e in logs if e["event"] == "capture_catch_up_retry"]) >= 4 or None,
                             60, "four tries while Discord fails")
        rows = await world.capture.catalogue.call("backups", limit=50)
        assert [r.state for r in rows if r.kind == "catchup" and r.channel_id == news.id].count("failed") == 1, rows
        be.faults.clear()
        await wait_until(lambda: "posted during the outage" in contents(world, news.id) or None, 30,
                         lambda: f"the outage caught up: {contents(world, news.id)}")
        lines = " ".join(await world.say(world.owner, "!backup status"))
        assert lines.count("· failed,") == 1, lines


async def test_an_outage_while_helix_lacked_read_history_is_caught_up_once_it_has_it_again(data_dir):
    """Discord answers a history Helix may not read with an empty list: the catch-up must not pass for done."""
    async with simulated_guild(watch_settings(data_dir)) as world:
        be, alice = world.env.backend, world.member("alice")
        news = await watched(world, "news")
        history = discord.Permissions.read_message_history.flag
        be.set_overwrite(news.id, Overwrite(target_id=world.bot.user.id, type=OverwriteType.MEMBER, deny=history))
        await world.env.settle()

        be.create_message(news.id, alice.id, "posted during the outage", broadcast=False)  # never delivered
        world.bot.dispatch("ready")  # a new gateway session: its catch-up reads an empty history
        await backup_finished(world, news.id, count=2)
        be.create_message(news.id, alice.id, "heard live")
        await world.env.settle()
        await wait_until(lambda: "heard live" in contents(world, news.id) or None, 5, "the live message")

        be.delete_overwrite(news.id, world.bot.user.id)  # Helix can read the history again
        await world.env.settle()
        world.bot.dispatch("ready")  # and another gap: this catch-up can read
        await backup_finished(world, news.id, count=3)
        rows = await world.capture.catalogue.call("backups", limit=5)
        assert "posted during the outage" in contents(world, news.id), (
            f"archived: {contents(world, news.id)}; catch-ups: {[(r.kind, r.state, r.scanned) for r in rows]}")

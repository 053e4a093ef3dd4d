"""A server whose HELIX_PREFIX is not ``!`` reads its own prefix in every hint Helix gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.settings import Settings
from bot.sim.world import World
from sync import ConfigError
from sync.settings import SyncSettings
from tests.support.capture import backup_finished, cdn  # noqa: F401
from tests.support.waiting import wait_until
from tests.support.world import answer_to, answers, bot_messages, bot_settings, hosted_world, last_edit


@pytest_asyncio.fixture
async def question_world(data_dir: Path) -> AsyncIterator[World]:
    async for world in hosted_world(bot_settings(SyncSettings(data_dir=data_dir), prefix="?")):
        yield world


async def test_hints_show_the_prefix_this_server_types(question_world: World):
    world = question_world
    alice = world.member("alice")
    assert await answer_to(world, alice, "?get") == (
        "Give a message link or an archived message id: for example `?get 1456074443980800027`.")
    assert await answer_to(world, world.owner, "?backup") == "?backup needs `channel`: for example `?backup #general`."
    assert "`?find launch in:#general from:@alice`" in await answer_to(world, alice, "?find")
    helped = "\n".join(await world.say(alice, "?help get"))
    assert "?get" in helped and "`!" not in helped, helped
    assert await world.say(alice, "!get") == []  # the other prefix is not Helix's here


@pytest_asyncio.fixture
async def question_world_nosuch(data_dir: Path) -> AsyncIterator[World]:
    """Prefix ``?`` and a remote nobody defined: every answer about the archive carries a hint."""
    sync = SyncSettings(archive="nosuch:x", data_dir=data_dir, retries=0, retry_base_s=0.05)
    async for world in hosted_world(bot_settings(sync, prefix="?")):
        yield world


async def test_progress_edits_and_the_status_embed_show_the_prefix_too(question_world_nosuch: World, cdn):  # noqa: F811
    world = question_world_nosuch
    env, alice = world.env, world.member("alice")
    launch = world.guild.create_text_channel("launch")
    env.backend.create_message(launch.id, alice.id, "photo", broadcast=False,
                               attachments=[cdn.attachment(env, launch.id, "photo.bin", b"x" * 5000)])
    await env.settle()

    status = await answer_to_embed(world, alice, "?status")
    assert "admins see why when they run `?status`" in status["Remote health"], status

    since = len(env.http_requests)
    await world.say(alice, "?ritual 3")
    await wait_until(lambda: "could not archive" in last_edit(world, since), what="the ritual's failure")
    assert "can run `?outbox retry" in last_edit(world, since), last_edit(world, since)

    # A fresh volume whose archive cannot be read: the backup waits for the catalogue's rebuild.
    since = len(env.http_requests)
    await world.say(world.owner, f"?backup <#{launch.id}>")
    await wait_until(lambda: "waits" in last_edit(world, since), 60, "the backup's answer")
    assert "`?status` says why to admins" in last_edit(world, since), last_edit(world, since)
    assert "can retry with `?reindex`" in last_edit(world, since), last_edit(world, since)
    shown = repr(bot_messages(world))
    assert "`!" not in shown, shown


async def answer_to_embed(world: World, who, text: str) -> dict[str, str]:
    since = len(world.env.http_requests)
    await world.say(who, text)
    [reply] = answers(world, since)
    return {f["name"]: f["value"] for f in reply["embeds"][0].get("fields", [])}


async def test_get_gives_archived_text_back_as_written_not_with_this_servers_prefix(question_world: World):
    """A hint is Helix's own text; a member's `!deploy` quoted by ?get is what they wrote."""
    world = question_world
    alice = world.member("alice")
    general = world.guild.create_text_channel("general")
    posted = world.env.backend.create_message(general.id, alice.id, "run `!deploy` then `!rollback` if broken",
                                              broadcast=False)
    await world.env.settle()
    await world.say(world.owner, f"?backup <#{general.id}>")
    await backup_finished(world, general.id)
    got = await answer_to(world, alice, f"?get {posted.id}")
    assert "> run `!deploy` then `!rollback` if broken" in got, got
    helped = "\n".join(await world.say(alice, "?help get") + await world.say(world.owner, "?help outbox retry"))
    assert "!" not in helped.replace("!get", ""), helped


async def test_what_a_member_typed_is_quoted_back_as_typed_while_the_hints_take_this_prefix(question_world: World):
    world = question_world
    alice = world.member("alice")
    general = world.guild.create_text_channel("general")
    said = await answer_to(world, alice, "?find !deploy")
    assert said.replace("\u2060", "") == "Nothing archived that you can read matches `!deploy`.", said
    await world.say(world.owner, f"?watch <#{general.id}>")
    again = await answer_to(world, world.owner, f"?watch <#{general.id}>")
    assert again.endswith("is already watched: `?unwatch #general` stops it."), again


@pytest.mark.parametrize("raw", ["/", "/x", "`", "a`b", "\\", "a b", "a\tb", "toolong"])
def test_a_prefix_discord_would_read_itself_is_refused_in_one_sentence(raw: str) -> None:
    with pytest.raises(ConfigError, match="HELIX_PREFIX must be 1 to 5 characters") as refused:
        Settings.from_env({"HELIX_PREFIX": raw}, dotenv=None)
    assert len(str(refused.value).splitlines()) == 1, refused.value
    assert Settings.from_env({"HELIX_PREFIX": " ? "}, dotenv=None).prefix == "?"


async def test_a_full_page_of_results_still_fits_once_its_hints_take_a_longer_prefix(data_dir: Path):
    async for world in hosted_world(bot_settings(SyncSettings(data_dir=data_dir), prefix="helix!")):
        general = world.guild.create_text_channel("general")
        bob = world.member("bob")
        for week in range(6):
            world.env.backend.create_message(general.id, bob.id, f"week {week}: deploy " + f"{'x' * 60} " * 30,
                                             broadcast=False)
        await world.env.settle()
        await world.say(world.owner, f"helix!backup <#{general.id}>")
        assert (await backup_finished(world, general.id)).state == "done"
        since = len(world.env.http_requests)
        await bob.send(world.channel, "helix!find !deploy !deploy !deploy")  # the question is quoted in the page
        [page] = answers(world, since)
        assert "archived id" in page["content"] and len(page["content"]) <= 2000, len(page["content"])

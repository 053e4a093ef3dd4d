"""When things go wrong: a user's mistake, a refused permission, a cooldown, the remote down, a crash.

Each answer is one sentence and nothing else happens: no stack trace in Discord, nothing rendered,
nothing queued. A remote that is down is named by the step that failed, and a ritual made while
it is down is kept and lands when it comes back. A crash gets an error id the operator can find.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
import pytest_asyncio
from discord.ext import commands
from simcord.backend.errors import OptionError

from bot.sim.world import World
from sync.settings import SyncSettings
from tests.support.remotes import LoopbackRemote
from tests.support.waiting import wait_until
from tests.support.world import (
    COOLDOWN_S,
    answers,
    bot_messages,
    bot_settings,
    check_ritual_pair,
    drained,
    helix_on_loopback_discord,
    hosted_world,
    log_records,
    outbox_counts,
)

# Refusals change nothing, so one guild serves every refusal test of this module.
SHARED = pytest.mark.asyncio(loop_scope="module")

BAD_RITUALS = {
    "negative": "!ritual -1",
    "zero": "!ritual 0",
    "a word": "!ritual abc",
    "too many steps": "!ritual 99999999",
    "scientific notation": "!ritual 1e9",
    "extra words": "!ritual 108 extra words",
    "a 1992-digit number": "!ritual " + "9" * 1992,  # a message is at most 2000 characters (4000: gateway test)
    "a 1992-letter word": "!ritual " + "x" * 1992,
}
# /ritual declares its range to Discord, whose own UI refuses these before the bot sees them.
SLASH_OUT_OF_RANGE = {"slash, negative": "/ritual steps:-1", "slash, zero": "/ritual steps:0",
                      "slash, too many steps": "/ritual steps:99999999"}
USER_MISTAKES = (commands.UserInputError, commands.CheckFailure, commands.CommandOnCooldown)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    async for world in hosted_world(bot_settings(sync)):
        yield world


def assert_one_sentence(text: str) -> None:
    """What a user should get for a mistake: one short line, one sentence, nothing from inside the bot."""
    assert "\n" not in text and len(text) < 250, text
    assert text.endswith("."), text
    assert not re.search(r"[.!?] [A-Z]", text.replace("e.g. ", "")), f"more than one sentence: {text}"
    for leak in ("Traceback", 'File "', "Error:", "Exception", "discord.ext", "<"):
        assert leak not in text, f"{leak!r} in {text!r}"


async def refused(world: World, who, text: str) -> str:
    """``who`` types ``text`` and is refused: exactly one answer, one sentence, and no other REST call."""
    since = len(world.env.http_requests)
    errors_before = len(world.env.errors)
    await world.say(who, text)
    requests = world.env.http_requests[since:]
    replies = answers(world, since)
    assert len(replies) == 1, f"{text[:40]!r} got {len(replies)} answers: {replies}"
    assert len(requests) == 1, f"{text[:40]!r} did more than answer: {[(r.method, r.path) for r in requests]}"
    content = replies[0]["content"]
    assert_one_sentence(content)
    if text.startswith("/"):  # a slash command's refusal is seen by the one who typed it alone
        assert replies[0].get("flags", 0) & discord.MessageFlags(ephemeral=True).value, replies[0]
    new_errors = world.env.errors[errors_before:]  # reading them tells SimCord they were expected
    assert new_errors and all(is_user_mistake(world, e) for e in new_errors), new_errors
    return content


def is_user_mistake(world: World, error: BaseException) -> bool:
    # load_extension executes a cog module anew for each bot: take the class this bot's cogs raise.
    mistakes = (*USER_MISTAKES, world.bot.extensions["bot.cogs.errors"].UserFacingError)
    return isinstance(error, mistakes) or isinstance(getattr(error, "original", None), mistakes)


def archived_files(world: World) -> list[Path]:
    root = world.archive.settings.archive_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- bad input ---------------------------------------------------------------------------------


@SHARED
@pytest.mark.parametrize("text", BAD_RITUALS.values(), ids=BAD_RITUALS.keys())
async def test_a_bad_ritual_gets_one_sentence_and_nothing_is_archived(shared_world: World, text: str) -> None:
    world = shared_world
    before = await outbox_counts(world)

    content = await refused(world, world.member("alice"), text)

    assert "steps" in content or "fewer words" in content, content
    assert await outbox_counts(world) == before, "a refused ritual must queue nothing"
    assert archived_files(world) == []
    tmp = Path(world.archive.settings.data_dir) / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), "a refused ritual must render nothing"


async def test_a_4000_character_argument_gets_one_sentence_and_nothing_is_archived(data_dir: Path) -> None:
    """Discord lets Nitro users send 4000 characters (SimCord models the 2000 of everyone else)."""
    arguments = ("9" * 3992, "x" * 3992)
    async with helix_on_loopback_discord(bot_settings(SyncSettings(data_dir=data_dir))) as (fake, bot):
        for argument in arguments:
            await fake.ask(f"!ritual {argument}")
        counts = await bot.archive.outbox.counts()

    # Leaving the block waited for every command handler still running: this is all the bot ever said.
    replies = fake.sent_messages
    assert [r["action"] for r in replies] == ["create"] * len(arguments), replies
    for reply, argument in zip(replies, arguments, strict=True):
        assert_one_sentence(reply["content"])
        assert "`steps` must be a whole number from 1 to 10000" in reply["content"], reply["content"]
        assert argument[:20] not in reply["content"], "the argument is not echoed back"
    assert (counts.pending, counts.uploading, counts.done, counts.failed) == (0, 0, 0, 0)
    assert list(data_dir.rglob("*.png")) == [] and list(data_dir.rglob("*.json")) == [], "nothing rendered"


# -- who may do what ----------------------------------------------------------------------------


@SHARED
@pytest.mark.parametrize("text", SLASH_OUT_OF_RANGE.values(), ids=SLASH_OUT_OF_RANGE.keys())
async def test_discord_itself_refuses_a_slash_ritual_out_of_range(shared_world: World, text: str) -> None:
    world = shared_world
    since = len(world.env.http_requests)
    with pytest.raises(OptionError, match="steps"):
        await world.say(world.member("alice"), text)
    assert world.env.http_requests[since:] == [], "the bot never saw it"


@SHARED
@pytest.mark.parametrize("text", ["!testmega", "!testremote", "/testmega"])
async def test_a_member_without_the_admin_role_is_refused_testmega(shared_world: World, text: str) -> None:
    world = shared_world

    content = await refused(world, world.member("mallory"), text)

    # Who may is the member's business; the variable that grants it is the operator's (the log's).
    assert content.startswith("Only Helix admins can use ") and "HELIX_" not in content, content


@SHARED
async def test_a_member_with_the_admin_role_may_run_testmega(shared_world: World) -> None:
    world = shared_world
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[world.guild.roles["Helix Admins"]])

    since = len(world.env.http_requests)
    await world.say(carol, "!testmega")

    [reply] = answers(world, since)
    assert reply["embeds"][0]["title"] == "Archive round trip ok"


@SHARED
@pytest.mark.parametrize(("text", "command"), [("!sync", "sync"), ("!sync global", "sync"), ("!outbox", "outbox"),
                                               ("!outbox retry all", "outbox retry")])
async def test_owner_commands_are_refused_to_everyone_else_even_admins(
        shared_world: World, text: str, command: str) -> None:
    world = shared_world
    admin = world.guild.add_member(world.env.create_user(f"admin-{len(world.users)}"),
                                   roles=[world.guild.roles["Helix Admins"]])

    content = await refused(world, admin, text)

    assert content == f"Only the bot's owner can use !{command}.", content


# -- cooldown ------------------------------------------------------------------------------------


async def test_a_second_ritual_inside_the_cooldown_is_told_how_long_to_wait(local_world: World) -> None:
    world = local_world
    alice, bob = world.member("alice"), world.member("bob")

    # A typo is refused without spending the cooldown: the corrected ritual runs at once.
    await refused(world, alice, "!ritual abc")
    await refused(world, alice, "!ritual 0")
    assert "archived to" in "\n".join(await world.say(alice, "!ritual 5"))
    await drained(world)
    queued = await outbox_counts(world)

    assert await refused(world, alice, "!ritual 6") == f"Slow down: you can use !ritual again in {COOLDOWN_S} s."
    await world.env.advance_time(10)
    assert await refused(world, alice, "/ritual steps:6") == "Slow down: you can use /ritual again in 20 s."
    assert await outbox_counts(world) == queued, "a ritual refused for the cooldown queues nothing"
    assert "archived to" in "\n".join(await world.say(bob, "!ritual 6")), "the cooldown is per user"

    await world.env.advance_time(21)
    assert "archived to" in "\n".join(await world.say(alice, "!ritual 6"))


# -- the remote is down --------------------------------------------------------------------------


async def test_admin_runs_testmega_while_the_remote_is_down_names_the_step(
        webdav_world: World, webdav: LoopbackRemote) -> None:
    world = webdav_world
    await asyncio.to_thread(webdav.stop)

    since = len(world.env.http_requests)
    await world.say(world.owner, "!testmega")

    [reply] = answers(world, since)
    [embed] = reply["embeds"]
    assert embed["title"] == "Archive round trip FAILED"
    fields = [(f["name"], f["value"]) for f in embed["fields"]]
    assert fields[0][0] == "✅ write"
    assert fields[1][0] == "❌ upload"
    failed_name, sentence = fields[-1]
    assert failed_name == "Failed at: upload"
    assert "loop:" in sentence and ("reach" in sentence or "connect" in sentence), sentence
    assert webdav.password not in repr(embed)


async def test_a_ritual_made_while_the_remote_is_down_is_kept_and_lands_when_it_comes_back(
        webdav_world: World, webdav: LoopbackRemote) -> None:
    world = webdav_world
    await asyncio.to_thread(webdav.stop)
    since = len(world.env.http_requests)

    await world.say(world.member("alice"), "!ritual 9")

    [posted] = answers(world, since)
    [queued] = [m for m in bot_messages(world, since) if m["method"] == "PATCH"]
    first, second = map(int, re.findall(r"#(\d+)", posted["content"]))
    expected = rf"💾 saved locally, queued as #{first} and #{second}, will retry \(next try in .+\): .+"
    assert re.search(expected, queued["content"]), queued["content"]
    counts = await outbox_counts(world)
    assert counts["pending"] + counts["uploading"] == 2 and counts["done"] == 0, counts
    kept = sorted(p.name for p in (Path(world.archive.settings.data_dir) / "outbox").iterdir())
    assert [n for n in kept if n.endswith((".png", ".json"))], f"the ritual is not kept locally: {kept}"

    await asyncio.to_thread(webdav.start)
    await drained(world)

    message = await wait_until(lambda: next((m for m in reversed(world.channel.history())
                                             if "✅ archived" in m.content), None),
                               what="the ritual's message says where it landed")
    assert message.id == int(re.search(r"/messages/(\d+)$", queued["path"])[1])
    where = re.search(r"archived to `loop:(?P<rel>[^`]+\.png)`", message.content)["rel"]
    check_ritual_pair(webdav.storage, where.rsplit("/", 1)[1], steps=9)
    assert await outbox_counts(world) == {"pending": 0, "uploading": 0, "failed": 0, "done": 2}


# -- a crash ------------------------------------------------------------------------------------


async def test_an_unexpected_error_gets_an_error_id_that_is_in_the_logs_with_the_traceback(
        local_world: World, helix_logs) -> None:
    world = local_world
    # Discord itself fails: the interaction callback (the bot's "thinking…") answers 500 once.
    world.env.inject_error("POST", "/interactions/*/*/callback", status=500, message="Internal Server Error")
    since = len(world.env.http_requests)

    await world.say(world.member("alice"), "/status")

    [reply] = answers(world, since)
    content = reply["content"]
    error_id = re.fullmatch(r"Something went wrong on my side \(error id `([0-9a-f]{8})`\); the operator can find "
                            r"it in the logs\.", content)[1]
    assert_one_sentence(content)
    [crash] = [r for r in log_records(helix_logs) if r.get("message") == "command_crashed"]
    assert crash["error_id"] == error_id and crash["level"] == "error"
    assert "Traceback" in crash["exception"] and "500" in crash["exception"], crash["exception"]
    [captured] = world.env.errors
    assert "500" in repr(captured) or "500" in repr(getattr(captured, "original", None))

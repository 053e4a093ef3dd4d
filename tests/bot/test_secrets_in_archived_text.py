"""A secret someone once pasted into a channel is archived as it was; what Helix shows of it never holds it.

The secret is shaped like a Discord token (``runtime.logs.redact`` knows the shape). Helix shows
archived text in many ways (search pages turned, snippets cut and marked around a match, text
escaped, a message brought back in a channel or by direct message, its files by name): each is
read here as the channel reads it, with Discord's escapes undone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bot.sim.world import World
from runtime import logs
from tests.support.archived import Archived, archived_server
from tests.support.capture import backup_finished
from tests.support.world import answers

TOKEN = "MTA4NjQ5NzM1NjI3Nzk0NjQ0Mg.GhT7xQ.dQw4w9WgXcQ-not-a-real-token-but-shaped-like-one"
UNDERSCORED = "MTA4NjQ5NzM1NjI3Nzk0NjQ0Mg.GhT7xQ.dQw4w9_WgXcQ-not_a_real_token_shaped_like_one"
# What matters of a token once its first part (the bot's id, which anyone can look up) is cut off.
STAMP_AND_SIGNATURE = TOKEN.split(".", 1)[1]
LEAD = 1560  # where a token in a long message straddles the cut of its quote, before redaction
PASSWORD = "hunter_2*rclone"  # an rclone password: markdown characters in it, as passwords have


@pytest.fixture
def configured_password() -> Iterator[str]:
    """The archive's rclone password, set in the environment as an operator sets it."""
    logs.refresh_secrets({"RCLONE_CONFIG_ARCHIVE_PASS": PASSWORD})
    yield PASSWORD
    logs.refresh_secrets()


def as_read(text: str) -> str:
    """``text`` as Discord renders it: an escaped character shows as itself, bold marks do not show."""
    return re.sub(r"\\(.)", r"\1", text).replace("**", "")


async def archived(a: Archived, channel: Any, who: Any, *texts: str, files: list[dict] | None = None) -> list[int]:
    """``who`` posts ``texts`` in ``channel`` (the files with the last one), and the owner backs it up again."""
    world, be = a.world, a.world.env.backend
    ids = [be.create_message(channel.id, who.id, text, broadcast=False,
                             attachments=files if i == len(texts) - 1 and files else []).id
           for i, text in enumerate(texts)]
    await world.env.settle()
    await world.say(world.owner, f"!backup <#{channel.id}>")
    assert (await backup_finished(world, channel.id, count=2)).state == "done"
    return ids


async def ask(world: World, who: Any, text: str, where: Any = None) -> str:
    since = len(world.env.http_requests)
    await who.send(where or world.channel, text)
    return answers(world, since)[-1]["content"]


async def test_a_token_is_redacted_on_every_page_of_a_search(local_world: World, cdn):
    a = await archived_server(local_world, cdn)
    world = local_world
    await archived(a, a.general, a.bob, *(f"deploy key {TOKEN} number {i}" for i in range(7)))
    first = await ask(world, a.bob, "!find deploy")
    assert "page 1" in first and "[REDACTED]" in first and TOKEN not in first, first
    await a.bob.click(world.channel.last_message, label="Next")
    second = world.channel.last_message.content
    assert "page 2" in second and "[REDACTED]" in second and TOKEN not in second, second


async def test_a_token_with_an_underscore_is_redacted_before_it_is_escaped(local_world: World, cdn):
    a = await archived_server(local_world, cdn)
    world = local_world
    await archived(a, a.general, a.bob, f"deploy key {UNDERSCORED}")
    got = await ask(world, a.bob, "!find deploy")
    # escaped, the token reads "\_" where it has "_": the redaction no longer knew it, yet Discord shows "_"
    assert "[REDACTED]" in got and UNDERSCORED not in as_read(got), got


async def test_a_configured_password_pasted_in_a_channel_is_redacted_before_it_is_escaped(
        local_world: World, cdn, configured_password: str):
    a = await archived_server(local_world, cdn)
    world = local_world
    await archived(a, a.general, a.bob, f"the archive password is {configured_password}, keep it safe")
    got = await ask(world, a.bob, "!find archive password")
    assert "the archive password is [REDACTED], keep it safe" in got and PASSWORD not in as_read(got), got


async def test_a_snippet_cut_or_marked_inside_a_token_shows_no_piece_of_it(local_world: World, cdn):
    a = await archived_server(local_world, cdn)
    world, env = local_world, local_world.env
    files = [cdn.attachment(env, a.general.id, name, b"key\n", "text/plain")
             for name in (f"bot-token-{TOKEN}.txt", "rotate.it.before.the.big.demo.on.friday.then.we.all.relaunch.txt")]
    await archived(a, a.general, a.bob, f"the new bot token is {TOKEN} so please rotate it before the demo on friday "
                                        "and then we all redeploy", f"rotate the key {TOKEN} now", "", files=files)
    # the search snippet starts a few words before the match: here, inside the token, past its first part
    got = as_read(await ask(world, a.bob, "!find redeploy"))
    assert "so please rotate it" in got and "[REDACTED]" in got and "GhT7xQ" not in got, got
    assert STAMP_AND_SIGNATURE not in got, got
    # the same, the match in a file's name: the snippet is cut from the files' names
    got = as_read(await ask(world, a.bob, "!find relaunch"))
    assert "[REDACTED].txt rotate.it" in got and "GhT7xQ" not in got, got
    # a word of the token searched for (the answer's first line echoes it): the match is marked in bold inside it
    got = as_read(await ask(world, a.bob, "!find GhT7xQ")).split("\n", 1)[1]
    assert got.count("[REDACTED]") == 3 and "GhT7xQ" not in got and "dQw4w9WgXcQ" not in got, got


async def test_a_message_with_a_token_brought_back_by_direct_message_is_redacted(local_world: World, cdn):
    a = await archived_server(local_world, cdn)
    world = local_world
    [secret_id] = await archived(a, a.secret, a.alice, f"the bot token is {TOKEN}")
    here = await ask(world, a.alice, f"!get {secret_id}", a.secret)
    assert "[REDACTED]" in here and TOKEN not in here, here
    # asked in the bot's channel, which bob reads too: the message goes to alice by DM
    told = await ask(world, a.alice, f"!get {secret_id}")
    assert "direct message" in told, told
    dm = a.alice.user.dm_channel.last_message.content
    assert "the bot token is [REDACTED]" in dm and TOKEN not in dm, dm


async def test_a_long_message_and_its_files_come_back_with_no_token(local_world: World, cdn):
    a = await archived_server(local_world, cdn)
    world, env = local_world, local_world.env
    world.bot.settings = replace(world.bot.settings, get_upload_mb=1)
    # one long line, cut where the quote must end: there, a token; the whole text is attached
    words = " ".join(["rotate"] * 400)
    text = f"{words[:LEAD]} {TOKEN} {words}"[:1990]
    # over the upload limit, a file's name is quoted shortened to a hundred characters: inside the token
    long_name = f"notes.from.the.quarterly.board.meeting.of.{TOKEN}.bin"
    files = [cdn.attachment(env, a.general.id, f"bot_token_{TOKEN}.txt", b"the key again\n", "text/plain"),
             cdn.attachment(env, a.general.id, long_name, os.urandom(1_100_000))]
    [message_id] = await archived(a, a.general, a.bob, text, files=files)
    got = as_read(await ask(world, a.bob, f"!get {message_id}"))
    assert f"`message-{message_id}.txt`" in got and "is over the 1.0 MiB upload limit" in got, got
    assert "[REDACTED]" in got and "GhT7xQ" not in got, got
    whole, posted = world.channel.last_message.attachments
    assert [whole.filename, posted.filename] == [f"message-{message_id}.txt", "bot_token_[REDACTED].txt"]
    assert (await whole.read()).decode() == text.replace(TOKEN, "[REDACTED]")
    assert await posted.read() == b"the key again\n"

"""``!find`` and ``!archives``: from the catalogue, paged with buttons, only from channels the asker can read."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from simcord import SetupError
from simcord.enums import ChannelType

from bot.cogs.find import summary_line
from bot.paging import PAGER_TIMEOUT_S
from bot.sim.world import World
from catalogue import ChannelSummary
from tests.support.archived import archived_server
from tests.support.capture import backup_finished
from tests.support.waiting import wait_until
from tests.support.world import answers, private_channel

ERROR_ID = re.compile(r"error id", re.IGNORECASE)


def last(world: World, since: int) -> dict:
    said = answers(world, since)
    assert said, "the bot did not answer"
    return said[-1]


async def ask(world: World, who, text: str, where=None) -> dict:
    """``who`` types ``text`` in ``where`` (the bot's channel, which every member can read, by default)."""
    since = len(world.env.http_requests)
    await who.send(where or world.channel, text)
    return last(world, since)


async def test_find_by_word_phrase_author_channel_dates_and_images(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world, alice = local_world, a.alice
    # alice is staff: asked in #secret, the public three and the secret one
    got = (await ask(world, alice, "!find launch", a.secret))["content"]
    assert got.count("archived id") == 4 and "**launch**" in got, got
    assert "**alice**" in got and "<t:" in got and "https://discord.com/channels/" in got
    got = (await ask(world, alice, '!find "launch code"', a.secret))["content"]
    assert str(a.ids["code"]) in got and got.count("archived id") == 1
    got = (await ask(world, alice, "!find launch from:bob"))["content"]
    assert got.count("archived id") == 1 and str(a.ids["minutes"]) in got
    got = (await ask(world, alice, f"!find launch in:<#{a.general.id}>"))["content"]
    assert got.count("archived id") == 3 and str(a.ids["code"]) not in got
    got = (await ask(world, alice, "!find launch in:#secret", a.secret))["content"]
    assert got.count("archived id") == 1
    got = (await ask(world, alice, "!find launch after:2026-01-02 before:2026-01-05", a.secret))["content"]
    assert sorted(int(x) for x in re.findall(r"archived id `(\d+)`", got)) == sorted([a.ids["photo"], a.ids["code"]])
    got = (await ask(world, alice, "!find has:image"))["content"]
    assert re.findall(r"archived id `(\d+)`", got) == [str(a.ids["photo"])]
    # archived text is shown escaped: no mention renders, nothing pings
    got = await ask(world, alice, "!find noon")
    assert "@\u200beveryone" in got["content"] and f"<@{a.alice.id}>" not in got["content"]
    got = (await ask(world, alice, "!find zeppelin", a.secret))["content"]
    assert got == "Nothing archived that you can read matches `zeppelin`."


async def test_pages_turn_for_the_asker_only(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn, extra=12)
    world = local_world
    first = await ask(world, a.bob, "!find launch")
    assert "page 1" in first["content"] and first["content"].count("archived id") == 5
    pager = world.channel.last_message
    assert pager.content == first["content"]
    await a.bob.click(pager, label="Next")
    pager = world.channel.last_message
    assert "page 2" in pager.content and pager.content.count("archived id") == 5
    # three pages of 15 public results: Next is disabled on the last one; the secret is never counted
    await a.bob.click(pager, label="Next")
    pager = world.channel.last_message
    assert "page 3" in pager.content and str(a.ids["code"]) not in pager.content
    with pytest.raises(SetupError):
        await a.bob.click(pager, label="Next")
    stranger = world.member("carol")
    refused = await stranger.click(pager, label="Prev")
    assert refused.ephemeral and "Only the member who asked" in refused.response.content
    assert "page 3" in world.channel.last_message.content
    await a.bob.click(pager, label="Prev")
    assert "page 2" in world.channel.last_message.content

    # the slash form: ephemeral, and its pages turn too
    result = await a.bob.slash(world.channel, "find", query="launch")
    assert result.ephemeral and "page 1" in result.response.content
    turned = await a.bob.click(result.response, label="Next")
    shown = turned.response.content if turned.response is not None else ""
    assert "page 2" in shown, turned


async def test_a_search_in_a_watched_channel_is_the_archive_as_it_was_when_asked(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn, extra=12)
    world, env = local_world, local_world.env
    await world.say(world.owner, f"!watch <#{a.general.id}>")
    cat = world.capture.catalogue

    async def archived(message_id: int) -> None:
        await wait_until(lambda: cat.call("message", message_id), what="the watched message is archived")

    # bob asks in #general, which is watched: his question is archived too, but is not its own answer
    since = len(env.http_requests)
    asked = await a.bob.send(a.general, "!find launch")
    await archived(asked.id)
    first = last(world, since)["content"]
    assert "page 1" in first and "!find" not in first, first
    pager = a.general.last_message

    # a new message about the launch lands while he reads: the pages he turns do not shift
    news = env.backend.create_message(a.general.id, a.alice.id, "launch moved to Saturday")
    await env.settle()
    await archived(news.id)
    await a.bob.click(pager, label="Next")
    await a.bob.click(pager, label="Prev")
    [turned] = [m for m in a.general.history() if m.id == pager.id]
    assert turned.content == first
    assert str(news.id) in (await ask(world, a.bob, "!find saturday"))["content"]  # a new question sees it


async def test_access_taken_away_while_paging_is_away_from_the_next_page(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn, extra=12)
    world, env = local_world, local_world.env
    result = await a.alice.slash(world.channel, "find", query="launch")  # sixteen results, the secret one last
    assert result.ephemeral and "page 1" in result.response.content
    env.backend.remove_member_role(world.guild.id, a.alice.id, a.staff.id)
    await env.settle()
    # fifteen now: page 3 is the last, and the secret is on none of them
    shown = result.response
    for page in (2, 3):
        shown = (await a.alice.click(shown, label="Next")).response
        assert f"page {page}" in shown.content and str(a.ids["code"]) not in shown.content, shown.content
    with pytest.raises(SetupError):
        await a.alice.click(shown, label="Next")


async def test_hostile_queries_get_an_answer_never_an_error_id(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world = local_world
    for text in ['"', "*", "NEAR(launch", "-launch", '"launch', "launch OR", "x" * 1900, "has:video",
                 "before:2026-13-45", "from:", "in:#", "a:b:c", "launch* NOT *", "^", ")(", "@everyone"]:
        got = (await ask(world, a.bob, f"!find {text}"))["content"]
        assert got and not ERROR_ID.search(got), (text, got)
    result = await a.bob.slash(world.channel, "find", query="NEAR(" + '"' * 2000 + "x" * 2000)
    assert result.ephemeral and not ERROR_ID.search(result.response.content)


async def test_visibility_for_find_and_archives_prefix_and_slash(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world, env = local_world, local_world.env
    secret_words = "the launch **code** is 4242"
    # alice (staff) sees the secret channel, bob does not: neither in results nor in counts nor in !archives
    assert secret_words in (await ask(world, a.alice, "!find code", a.secret))["content"]
    # typed where bob reads too, her answer holds only what everyone there may read, and says so
    public = (await ask(world, a.alice, "!find code"))["content"]
    assert public == ("Nothing archived that everyone here can read matches `code`.\n-# channels not everyone here "
                      "can read are left out: `/find` searches them for you alone."), public  # not that they match
    public = (await ask(world, a.alice, "!find zeppelin"))["content"]
    assert public.startswith("Nothing archived that everyone here can read matches `zeppelin`.\n"), public
    public = (await ask(world, a.alice, "!find launch"))["content"]
    assert public.count("archived id") == 3 and "4242" not in public and "left out: `/find`" in public, public
    assert (await ask(world, a.bob, "!find code"))["content"].startswith("Nothing archived that you can read")
    got = await a.bob.slash(world.channel, "find", query="code")
    assert got.ephemeral and got.response.content.startswith("Nothing archived that you can read")
    got = await a.alice.slash(world.channel, "find", query="code")
    assert got.ephemeral and secret_words in got.response.content
    listing = (await ask(world, a.alice, "!archives", a.secret))["content"]
    assert f"<#{a.secret.id}>" in listing and f"<#{a.general.id}>" in listing and "not watched" in listing
    listing = (await ask(world, a.alice, "!archives"))["content"]
    assert f"<#{a.secret.id}>" not in listing and "-# Channels not everyone here can read are left out" in listing
    listing = (await ask(world, a.alice, f"!archives <#{a.secret.id}>"))["content"]
    assert "1 message" not in listing and "`/archives` with it as `channel` shows it to you alone" in listing, listing
    assert "secret" not in listing.replace(f"<#{a.secret.id}>", ""), listing  # bob reads this: not named for him
    got = await a.alice.slash(world.channel, "archives")
    assert got.ephemeral and f"<#{a.secret.id}>" in got.response.content
    listing = (await ask(world, a.bob, "!archives"))["content"]
    assert f"<#{a.secret.id}>" not in listing and f"<#{a.general.id}>" in listing
    got = await a.bob.slash(world.channel, "archives")
    assert got.ephemeral and f"<#{a.secret.id}>" not in got.response.content
    listing = (await ask(world, a.bob, f"!archives <#{a.general.id}>"))["content"]
    assert "4 messages" in listing and "2 files" in listing, listing
    listing = (await ask(world, a.alice, f"!archives <#{a.secret.id}>", a.secret))["content"]
    assert " · 1 message · 0 files (0 B) · " in listing, listing
    # a channel bob cannot open: answered as one that does not exist, not "nothing archived yet"
    hidden = (await ask(world, a.bob, f"!archives <#{a.secret.id}>"))["content"]
    two = (await ask(world, a.bob, f"!archives <#{a.general.id}> <#{a.general.id}>"))["content"]
    assert two == "!archives takes fewer words than that: for example `!archives #general`.", two
    refused = (await ask(world, a.bob, "!archives nosuch"))["content"]  # not "every channel" instead
    assert refused == hidden == ("`channel` must be a channel, forum or thread of this server: for example "
                                 "`!archives #general`."), (refused, hidden)
    assert world.env.errors  # that refusal was expected: reading the errors tells SimCord so

    # alice leaves the staff after the archive was made: from now on the secret is hidden from her too
    env.backend.remove_member_role(world.guild.id, a.alice.id, a.staff.id)
    await env.settle()
    assert (await ask(world, a.alice, "!find code"))["content"].startswith("Nothing archived that you can read")
    listing = (await ask(world, a.alice, "!archives"))["content"]
    assert f"<#{a.secret.id}>" not in listing and "left out" not in listing, listing

    # in a DM: one sentence, nothing from any server
    since = len(env.http_requests)
    await a.alice.send_dm("!find launch")
    [dm] = [m["content"] for m in answers(world, since)]
    assert dm.startswith("Search works in a server"), dm


async def test_a_highlighted_mention_still_does_not_render(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    got = (await ask(local_world, a.bob, "!find everyone"))["content"]
    assert "@\u200b**everyone**" in got and "@**everyone**" not in got, got
    got = (await ask(local_world, a.bob, f"!find {a.alice.id}"))["content"]
    assert f"<@\u200b**{a.alice.id}**>" in got, got


def test_a_channel_archived_without_a_finished_backup_does_not_read_as_never_backed_up():
    # what a cancelled backup archived, or a watch before any backup: there, but no backup finished
    row = ChannelSummary(7, 1, "general", 1200, 3, 4096, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", None, False)
    assert summary_line(row) == ("<#7> · 1,200 messages · 3 files (4.0 KiB) · 2026-01-01 → 2026-02-01 · "
                                 "no backup finished yet · not watched")
    done = summary_line(replace(row, last_backup_at=1_767_225_600.0, watched=True))
    assert done.endswith(" · last backup <t:1767225600:R> · watched"), done


async def test_a_snippet_keeps_spoilers_hidden_and_shows_no_escaped_markers(local_world: World):
    world = local_world
    general = world.guild.create_text_channel("general")
    alice = world.member("alice")
    world.env.backend.create_message(general.id, alice.id, "use a venv **installation** guide, the ending is "
                                     "||the butler did it|| of course", broadcast=False)
    await world.env.settle()
    await world.say(world.owner, f"!backup <#{general.id}>")
    await backup_finished(world, general.id)
    since = len(world.env.http_requests)
    await world.say(alice, "!find installation")
    said = answers(world, since)[-1]["content"]
    assert "use a venv **installation** guide" in said and "\\*" not in said, said
    assert "||the butler did it||" in said, said  # still a spoiler: whoever reads the answer clicks to see it


async def test_the_slash_hint_for_a_thread_not_for_everyone_does_not_spell_out_its_name(local_world: World,
                                                                                         cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world, env = local_world, local_world.env
    thread = env.backend.create_thread(a.secret.id, "bands `@everyone` **x**", a.alice.id,
                                       type=ChannelType.PUBLIC_THREAD, broadcast=False)
    env.backend.announce_thread_create(thread)
    env.backend.create_message(thread.id, a.alice.id, "salary bands", broadcast=False)
    await env.settle()
    await world.say(world.owner, f"!backup <#{a.secret.id}> threads")
    await backup_finished(world, a.secret.id, count=2)
    got = (await ask(world, a.alice, f"!archives <#{thread.id}>"))["content"]
    assert got == (f"<#{thread.id}> is not for everyone here, so its archive is not shown here: "
                   "`/archives` with it as `channel` shows it to you alone."), got


async def test_a_slash_pager_turned_late_still_greys_out_when_it_stops_answering(local_world: World, cdn):  # noqa: F811
    """Every press gives the pager another ten minutes, past the fifteen in which Discord lets the
    ``/find`` answer itself be edited: greying it out goes through the last press instead."""
    a = await archived_server(local_world, cdn, extra=12)
    world, env = local_world, local_world.env
    result = await a.bob.slash(world.channel, "find", query="launch")
    pager = result.response
    assert result.ephemeral and "page 1" in pager.content
    await env.advance_time(6 * 60)
    assert "page 2" in (await a.bob.click(pager, label="Next")).response.content
    await env.advance_time(PAGER_TIMEOUT_S + 60)
    buttons = [c for row in pager.components for c in row.get("components", [])]
    assert buttons and all(c.get("disabled") for c in buttons), buttons


async def _said_in(world: World, who, channel, text: str) -> str:
    since = len(world.env.http_requests)
    await who.send(channel, text)
    return answers(world, since)[-1]["content"]


async def test_archives_in_a_public_channel_does_not_tell_whether_a_hidden_channel_is_archived(local_world: World,
                                                                                               cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)  # the staff-only #secret is archived
    world = local_world
    vault = private_channel(world, "vault", a.staff, world.owner)  # staff-only too, never archived
    world.env.backend.create_message(vault.id, a.alice.id, "nothing to see", broadcast=False)
    await world.env.settle()
    # alice (staff) asks about each in #general, which bob reads: bob must not learn which one is archived
    about_secret = await _said_in(world, a.alice, a.general, f"!archives <#{a.secret.id}>")
    about_vault = await _said_in(world, a.alice, a.general, f"!archives <#{vault.id}>")
    assert about_secret.replace(str(a.secret.id), "X") == about_vault.replace(str(vault.id), "X"), \
        (about_secret, about_vault)

"""``!find`` at the edges of its language: numbers and dates past what Discord or SQLite can hold,
words left out with ``-``, either word with ``OR``, one day with ``during:``."""

from __future__ import annotations

import re

import discord

from bot.sim.world import World
from tests.support.archived import archived_server
from tests.support.capture import backup_finished
from tests.support.world import answers

ERROR_ID = re.compile(r"error id", re.IGNORECASE)


async def ask(world: World, who, text: str) -> str:
    since = len(world.env.http_requests)
    await who.send(world.channel, text)
    said = answers(world, since)
    assert said, f"the bot did not answer {text!r}"
    got = said[-1]["content"]
    assert not ERROR_ID.search(got), (text, got)
    return got


def found(got: str) -> set[int]:
    return {int(x) for x in re.findall(r"archived id `(\d+)`", got)}


async def test_numbers_and_dates_out_of_range_get_a_sentence_or_an_answer(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world, bob = local_world, a.bob
    public = {a.ids[k] for k in ("launch", "photo", "minutes")}

    for text in ("from:99999999999999999999", "launch from:0", "in:99999999999999999999",
                 "launch in:<#99999999999999999999>", "launch from:<@!9223372036854775808>"):
        got = await ask(world, bob, f"!find {text}")
        assert "is no Discord id" in got and "for example `!find hello " in got, (text, got)

    # Discord's ids run out in 2084, the calendar in 9999: later dates still mean what they say
    assert found(await ask(world, bob, "!find before:9999-12-31 launch")) == public
    assert found(await ask(world, bob, "!find launch before:2090-01-01")) == public
    assert found(await ask(world, bob, "!find before:2090-01-01 from:bob")) == {a.ids["lunch"], a.ids["minutes"]}
    for text in ("after:9999-12-31", "launch after:9999-12-31", "after:2090-01-01", "launch after:2090-01-01",
                 "launch during:9999-12-31", "during:0001-01-01", "launch before:0001-01-01"):
        got = await ask(world, bob, f"!find {text}")
        assert got.startswith("Nothing archived that you can read matches"), (text, got)


async def test_words_left_out_either_word_and_one_day(local_world: World, cdn):  # noqa: F811
    a = await archived_server(local_world, cdn)
    world, bob, ids = local_world, a.bob, a.ids

    assert found(await ask(world, bob, "!find launch -rocket")) == {ids["photo"], ids["minutes"]}
    assert found(await ask(world, bob, '!find launch -"launch pad" -REVIEW')) == {ids["launch"]}
    assert found(await ask(world, bob, "!find launch OR lunch")) == {ids[k] for k in ("launch", "lunch", "photo",
                                                                                      "minutes")}
    assert found(await ask(world, bob, "!find noon OR snacks -rocket")) == {ids["lunch"]}
    got = await ask(world, bob, "!find -rocket")
    assert got == "`-word` only leaves words out, so give a word to look for too: for example `!find launch -rocket`."
    got = await ask(world, bob, "!find launch OR")
    assert found(got) == {ids[k] for k in ("launch", "photo", "minutes")} and "a lone one was left out" in got, got
    got = await ask(world, bob, "!find lunch OR OR rocket")  # nothing has both: the note still says why
    assert got.startswith("Nothing archived that you can read matches") and "a lone one was left out" in got, got

    # during: that day only; after:/before: the days after or before it, as Discord's own search
    first, photo_day = (discord.utils.snowflake_time(ids[k]).date() for k in ("launch", "photo"))
    assert found(await ask(world, bob, f"!find during:{photo_day}")) == {ids["photo"]}
    assert found(await ask(world, bob, f"!find launch during:{first}")) == {ids["launch"]}
    assert found(await ask(world, bob, f"!find after:{first} before:{photo_day}")) == set()
    got = await ask(world, bob, f"!find during:{first} after:{first}")
    assert got.startswith("Those dates leave no day to search: for example `!find during:"), got


TABLE = ("| deploy | env | owner | status |\n|---|---|---|---|\n| api | prod | @alice | ✅ |\n"
         "| web | prod | @bob | ❌ |\n| db_main | stage | @carol | ✅ |\n| cache__x | stage | @dave | ✅ |\n"
         "| queue | prod | @erin | ❌ |\n| auth | prod | @frank | ✅ |\n| cdn | prod | @gina | ✅ |")


async def test_a_page_of_tables_and_mentions_fits_in_one_message_and_its_pages_turn(local_world: World):
    """Ops teams post their deploy table every week: escaped, each row's pipes and @names grow by half,
    and five of them would be more than Discord takes in one message, which it then refuses whole."""
    world, env = local_world, local_world.env
    general = world.guild.create_text_channel("general")
    bob = world.member("bob")
    posted = [env.backend.create_message(general.id, bob.id, f"week {week} {TABLE}", broadcast=False).id
              for week in range(8)]
    await env.settle()
    await world.say(world.owner, f"!backup <#{general.id}>")
    assert (await backup_finished(world, general.id)).state == "done"

    first = await ask(world, bob, "!find deploy")
    assert len(first) <= 2000 and found(first) == set(posted[3:]), first
    assert "**deploy**" in first and "@\u200balice" in first and "@alice" not in first, first
    await bob.click(world.channel.last_message, label="Next")
    turned = world.channel.last_message.content
    assert "page 2" in turned and found(turned) == set(posted[:3]) and len(turned) <= 2000, turned
    result = await bob.slash(world.channel, "find", query="deploy")
    assert result.ephemeral and len(result.response.content) <= 2000 and found(result.response.content) == \
        set(posted[3:]), result


async def test_a_slash_user_is_shown_the_slash_form_and_emoji_alone_get_a_way_forward(local_world: World):
    world = local_world
    bob = world.member("bob")
    for query, expected in (
            ("-launch", "`-word` only leaves words out, so give a word to look for too: for example "
                        "`/find query:launch -rocket`."),
            ("has:video", "`has:` takes file or image: for example `/find query:has:image`."),
            ("", "Tell me what to look for: for example `/find query:launch in:#general from:@alice`."),
            ("🚀", "I can't search for `🚀`: emoji and other symbols on their own are not searchable, only words. "
                  "Add a word from the message, or look by who posted it and when: for example "
                  "`/find query:from:@alice during:2026-01-31`.")):
        result = await bob.slash(world.channel, "find", query=query)
        assert result.ephemeral and result.response.content == expected, (query, result)
    got = await ask(world, bob, "!find 🚀 👍")
    assert got.startswith("I can't search for `🚀 👍`: emoji") and "`!find from:@alice during:2026-01-31`" in got, got
    got = await ask(world, bob, "!find has:video")
    assert got == "`has:` takes file or image: for example `!find has:image`.", got

"""Search answers only from the channels it is given, inside the SQL: paging never reveals the hidden."""

from __future__ import annotations

from pathlib import Path

from catalogue import Catalogue, SearchFilters
from catalogue._search import HIT_END, HIT_START
from catalogue.query import QueryError, parse_query
from tests.catalogue.seeding import channel, record, snowflake

GENERAL, SECRET = 100, 200
SHA = "ab" * 32


async def filled(data_dir: Path) -> Catalogue:
    cat = await Catalogue(data_dir).open()
    await cat.call("upsert_channel", channel(GENERAL, "general"))
    await cat.call("upsert_channel", channel(SECRET, "secret"))
    await cat.call("add_messages", [
        record(1, GENERAL, "the launch is on Friday", day="2026-01-02"),
        record(2, GENERAL, "lunch at noon", author=(8, "bob"), day="2026-01-03"),
        record(3, SECRET, "the launch code is 1234", day="2026-01-04"),
        record(4, GENERAL, "photo of the launch pad", day="2026-01-06", files=[("pad.png", "image/png", 10, SHA)]),
        record(5, GENERAL, "minutes attached", author=(8, "bob"), day="2026-01-07",
               files=[("minutes.pdf", "application/pdf", 20, SHA)]),
    ])
    return cat


def filters(text: str) -> SearchFilters:
    q = parse_query(text)
    return SearchFilters(q.match_expression(), q.author_ids, q.author_names, q.has, q.before, q.after)


async def ids(cat: Catalogue, text: str, chans=(GENERAL, SECRET), **kw) -> list[int]:
    page = await cat.call("find", chans, filters(text), **kw)
    return [h.message_id & 0x3FFFFF for h in page.hits]


async def test_words_phrases_authors_dates_and_files(data_dir: Path):
    async with await filled(data_dir) as cat:
        assert await ids(cat, "launch") == [4, 3, 1]  # newest first
        assert await ids(cat, '"launch code"') == [3]
        assert await ids(cat, "lau*") == [4, 3, 1]
        assert await ids(cat, "from:bob") == [5, 2]
        assert await ids(cat, "launch from:7") == [4, 3, 1]  # by member id: the member's messages walked first
        assert await ids(cat, "minutes from:<@8> after:2026-01-06") == [5]
        assert await ids(cat, "launch before:2026-01-04") == [1]
        assert await ids(cat, "after:2026-01-05") == [5, 4]
        assert await ids(cat, "has:image") == [4]
        assert await ids(cat, "has:file") == [5, 4]
        assert await ids(cat, "pad.png") == [4]  # file names are indexed too
        [hit] = (await cat.call("find", [GENERAL], filters("noon"))).hits
        assert f"{HIT_START}noon{HIT_END}" in hit.snippet and hit.author_name == "bob"


async def test_a_channel_not_given_is_never_searched_and_paging_is_cut_inside_it(data_dir: Path):
    async with await filled(data_dir) as cat:
        assert await ids(cat, "launch", chans=[GENERAL]) == [4, 1]
        assert await ids(cat, "code", chans=[GENERAL]) == []
        assert await ids(cat, "launch", chans=[]) == []
        first = await cat.call("find", [GENERAL], filters("launch"), limit=1)
        second = await cat.call("find", [GENERAL], filters("launch"), offset=1, limit=1)
        assert [h.message_id & 0x3FFFFF for h in first.hits] == [4] and first.more
        assert [h.message_id & 0x3FFFFF for h in second.hits] == [1] and not second.more  # 3 is hidden: no third page


async def test_hostile_queries_find_nothing_or_something_but_never_fail(data_dir: Path):
    async with await filled(data_dir) as cat:
        for text in ['"', '*', 'NEAR(launch', '-launch', 'launch"', 'a' * 4000, '"launch" OR', 'content:launch',
                     '^launch', '{launch}', 'launch AND NOT', '\x00launch', 'launch' * 700, 'OR OR launch OR',
                     'launch -"', 'launch -*', '-launch*', 'launch -NOT(', '(launch OR) -)', '-' * 50 + 'x']:
            try:
                q = parse_query(text)
            except QueryError as exc:  # a sentence is an answer too
                assert str(exc).endswith(".") and "for example `!find" in str(exc), text
                continue
            page = await cat.call("find", [GENERAL], SearchFilters(q.match_expression()))
            assert isinstance(page.hits, tuple), text


async def test_words_left_out_either_word_one_day_and_days_past_discord_ids(data_dir: Path):
    async with await filled(data_dir) as cat:
        assert await ids(cat, "launch -pad") == [3, 1]
        assert await ids(cat, 'launch -"launch code" -friday') == [4]
        assert await ids(cat, "launch OR lunch") == [4, 3, 2, 1]
        assert await ids(cat, "noon OR pad launch") == [4]  # OR binds the two words beside it only
        assert await ids(cat, "lau* -pad -code") == [1]
        assert await ids(cat, "during:2026-01-03") == [2]
        assert await ids(cat, "launch during:2026-01-04 from:7") == [3]
        assert await ids(cat, "launch before:9999-12-31") == [4, 3, 1]
        assert await ids(cat, "before:2090-01-01 from:bob") == [5, 2]
        assert await ids(cat, "launch after:2090-01-01") == []
        assert await ids(cat, "after:9999-12-31") == []
        assert await ids(cat, "during:9999-12-31") == []
        assert await ids(cat, "launch during:0001-01-01") == []


async def test_summaries_and_one_message_follow_the_same_rule(data_dir: Path):
    async with await filled(data_dir) as cat:
        rows, more = await cat.call("channel_summaries", [GENERAL, SECRET])
        general = next(r for r in rows if r.channel_id == GENERAL)
        assert (general.messages, general.files, general.bytes) == (4, 2, 30) and not more
        assert general.first_at.startswith("2026-01-02") and general.last_at.startswith("2026-01-07")
        rows, _ = await cat.call("channel_summaries", [GENERAL])
        assert [r.name for r in rows] == ["general"]
        assert await cat.call("archived_message", snowflake(3, "2026-01-04"), [GENERAL]) is None
        got = await cat.call("archived_message", snowflake(4, "2026-01-06"), [GENERAL])
        assert got.content == "photo of the launch pad" and got.files[0].blob == f"blobs/sha256/ab/{SHA}"


async def test_a_search_of_filters_only_shows_where_a_long_message_was_cut(data_dir: Path):
    long = "word " * 80  # 400 characters
    async with await Catalogue(data_dir).open() as cat:
        await cat.call("upsert_channel", channel(GENERAL, "general"))
        await cat.call("add_messages", [
            record(1, GENERAL, long, files=[("a.png", "image/png", 10, SHA)]),
            record(2, GENERAL, "short and whole", files=[("b.png", "image/png", 10, SHA)]),
        ])
        short, cut = (await cat.call("find", [GENERAL], filters("has:file"))).hits
        assert short.snippet == "short and whole"
        assert cut.snippet == long[:200].rstrip() + "…", cut.snippet


async def test_a_thread_counts_its_parents_backup_only_when_that_backup_took_the_threads(data_dir: Path):
    def kind(cid: int, name: str, type_: str, parent: int | None) -> dict:
        return {**channel(cid, name), "type": type_, "parent_id": str(parent) if parent else None}

    async with await Catalogue(data_dir).open() as cat:
        for info in (kind(10, "launch", "text", None), kind(11, "countdown", "public_thread", 10),
                     kind(20, "notes", "text", None), kind(21, "drafts", "public_thread", 20),
                     kind(30, "help", "forum", None), kind(31, "how do I", "public_thread", 30)):
            await cat.call("upsert_channel", info)
        for cid, threads in ((10, True), (20, False), (30, False)):  # a forum's backup always takes its posts
            row, _ = await cat.call("start_backup", 1, cid, threads=threads, kind="backup", requested_by=None,
                                    reply=None)
            await cat.call("finish_backup", row.id, "done")
        rows, _ = await cat.call("channel_summaries", [11, 21, 31])
        assert {r.name: r.last_backup_at is not None for r in rows} == {
            "countdown": True, "drafts": False, "how do I": True}


async def test_threads_are_listed_after_their_channel_and_a_forum_counts_its_listed_posts(data_dir: Path):
    def kind(cid: int, name: str, type_: str, parent: int | None) -> dict:
        return {**channel(cid, name), "type": type_, "parent_id": str(parent) if parent else None}

    async with await Catalogue(data_dir).open() as cat:
        for info in (kind(10, "zulu", "text", None), kind(11, "alpha thread", "public_thread", 10),
                     kind(30, "help", "forum", None), kind(31, "printer", "public_thread", 30),
                     kind(32, "staff only post", "public_thread", 30), kind(40, "mid", "text", None)):
            await cat.call("upsert_channel", info)
        await cat.call("add_messages", [
            record(1, 10, "in zulu"), record(2, 11, "in its thread"), record(3, 31, "printer on fire",
                                                                            files=[("fire.png", "image/png", 7, SHA)]),
            record(4, 31, "put it out"), record(5, 32, "a post the asker is not shown"), record(6, 40, "mid")])
        rows, more = await cat.call("channel_summaries", [10, 11, 30, 31, 40])
        assert not more
        assert [(r.name, r.parent_id) for r in rows] == [
            ("help", None), ("printer", 30), ("mid", None), ("zulu", None), ("alpha thread", 10)]
        forum = rows[0]
        assert (forum.type, forum.threads, forum.messages, forum.files, forum.bytes) == ("forum", 1, 2, 1, 7), forum
        assert [r.messages for r in rows[1:]] == [2, 1, 1, 1]
        # a thread whose channel is not listed stands on its own
        rows, _ = await cat.call("channel_summaries", [11])
        assert [(r.name, r.parent_id, r.messages) for r in rows] == [("alpha thread", None, 1)]

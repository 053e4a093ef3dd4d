"""A catalogue rebuilt from segments holds what the capture recorded, whichever path each line takes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from catalogue import Catalogue, prepare
from catalogue._packed import lines, record_text
from tests.catalogue.test_catalogue import SHA_A, SHA_B, rec

GUILD = 1


def line(obj: dict[str, Any]) -> str:
    """A segment line as capture/segments.py writes it."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def dump(data_dir: Path, leave_out: set[int] = frozenset()) -> dict[str, list[tuple]]:
    """Everything the catalogue says about messages, read from its file (the catalogue closed).

    ``records`` are the lines the catalogue holds, one by one or in segments kept whole."""
    conn = sqlite3.connect(f"file:{data_dir / 'catalogue.sqlite3'}?mode=ro", uri=True)
    try:
        queries = {
            "messages": "SELECT m.id, m.guild_id, m.channel_id, m.author_id, m.author_name, m.created_at, m.edited_at, "
                        "m.content, m.reply_to, m.revision, m.deleted_at FROM messages m ORDER BY m.id",
            "attachments": "SELECT message_id, id, channel_id, filename, size, content_type, sha256, state "
                           "FROM attachments ORDER BY id",
            "blobs": "SELECT sha256, size, path FROM blobs ORDER BY sha256",
            "words": "SELECT rowid, content, author_name, files FROM message_text ORDER BY rowid",
            "records": "SELECT message_id, kind, revision, body FROM records",
            "cursors": "SELECT id, guild_id, cursor FROM channels ORDER BY id",
        }
        out = {name: [r for r in conn.execute(sql) if r[0] not in leave_out] for name, sql in queries.items()}
        out["messages"] = [(*r, record_text(conn, r[0])) for r in out["messages"]]
        out["records"] = sorted([*out["records"], *(
            (mid, kind, rev, text) for (body,) in conn.execute("SELECT body FROM packed")
            for mid, kind, rev, text, _ in lines(body) if mid not in leave_out)])
        return out
    finally:
        conn.close()


async def captured(data_dir: Path) -> list[tuple]:
    """A catalogue filled the way capture fills it; returns its segments as the remote holds them."""
    async with Catalogue(data_dir) as cat:
        for cid in (10, 11):
            await cat.call("upsert_channel", {"id": str(cid), "guild_id": str(GUILD), "name": f"c{cid}"})
        await cat.call("add_blob", SHA_A, 3, None)
        await cat.call("add_messages", [rec(100, "the quarterly report", [(1, "a.png", SHA_A)]),
                                        rec(101, "lunch? ünïcode 🎉"), rec(102, "kept after deletion"),
                                        rec(103, "gone", [(3, "c.png", SHA_B)]), rec(104, "same bytes",
                                                                                    [(4, "d.png", SHA_A)])], (10, 104))
        await cat.call("add_messages", [rec(200, "another channel", channel=11)], (11, 200))
        await cat.call("add_revision", 101, {"content": "lunch at noon", "edited_at": "2026-01-01T01:00:00Z"})
        await cat.call("delete_message", 102, "2026-01-02T00:00:00Z", keep=True)
        claims = [await cat.call("claim_segment", cid, 1000) for cid in (10, 11)]
        # An edit after the first segment lands in the next one.
        await cat.call("add_revision", 100, {"content": "the annual report", "edited_at": "2026-01-03T00:00:00Z"})
        await cat.call("delete_message", 103, "2026-01-04T00:00:00Z", keep=False)  # rewrites its segment
        claims.append(await cat.call("claim_segment", 10, 1000))
        segments = []
        for claim in claims:
            again = await cat.call("segment_claim", claim.id)  # as written now (after the redaction)
            segments.append((GUILD, again.channel_id, again.path, again.transcript,
                             [line(x) for x in again.lines], None, 100))
        return segments


async def channels_read(cat: Catalogue, live: Path) -> None:
    """What a rebuild reads before the segments: each channel's ``channel.json`` as the capture in
    ``live`` writes it. Its cursor is the one a rebuild keeps (segments alone leave it at 0)."""
    async with Catalogue(live) as was:
        manifests = [{"guild_id": str(ch.guild_id), "channel": {"id": str(ch.id), "name": ch.name},
                      "cursor": str(await was.call("manifest_cursor", ch.id))} for ch in await was.call("channels")]
    await cat.call("restore_channels", manifests)


async def test_a_rebuilt_catalogue_holds_what_the_capture_recorded(tmp_path: Path):
    segments = await captured(tmp_path / "live")
    async with Catalogue(tmp_path / "rebuilt") as cat:
        await channels_read(cat, tmp_path / "live")
        assert await cat.call("restore_segments", segments) == sum(len(s[4]) for s in segments)
        assert await cat.call("search", "annual") == [100] and await cat.call("search", "quarterly") == []
        assert await cat.call("search", "noon") == [101] and await cat.call("search", "gone") == []
        assert (await cat.call("message", 101))["content"] == "lunch at noon"
    # A redacted message comes back as its tombstone alone: who wrote it and when is gone with it.
    live, rebuilt = dump(tmp_path / "live", {103}), dump(tmp_path / "rebuilt", {103})
    assert rebuilt["messages"] == live["messages"]
    assert rebuilt["attachments"] == live["attachments"] and rebuilt["words"] == live["words"]
    assert rebuilt["records"] == live["records"] and rebuilt["cursors"] == live["cursors"]
    assert rebuilt["blobs"] == [b for b in live["blobs"] if b[0] == SHA_A]  # 103's blob went with it


async def test_one_batch_gives_what_the_lines_give_one_by_one(tmp_path: Path):
    tomb = {"type": "tombstone", "id": "300", "channel_id": "10", "guild_id": "1", "deleted_at": "2026-01-09"}
    edit = {"type": "revision", "id": "301", "channel_id": "10", "guild_id": "1", "revision": 1,
            "content": "edited words", "edited_at": "2026-01-09"}
    odd = {**rec(303, "no author"), "author": None, "attachments": None, "content": None}
    missing = rec(302, "more words", [(8, "y.bin", SHA_B)])
    missing["attachments"][0].update(sha256=None, blob=None, status="missing")
    first = [line(rec(301, "plain words", [(7, "x.png", SHA_A)])), line(tomb), "not json {", "[1, 2]",
             line({"no": "id"}), line(missing), line(odd)]
    second = [line(rec(300, "deleted before it was read")), line(edit), line(rec(302, "a second copy")),
              line({"type": "pin", "id": "304"}), line(rec(305, "after the odd ones", [(9, "z.png", SHA_A)]))]
    segments = [(GUILD, 10, "discord/1/10/messages/a.jsonl", "t/a.html", first, None, 1),
                (GUILD, 10, "discord/1/10/messages/b.jsonl", "t/b.html", second, None, 1)]
    async with Catalogue(tmp_path / "batch") as cat:
        batch_added = await cat.call("restore_segments", segments)
        assert await cat.call("search", "edited") == [301] and await cat.call("search", "deleted") == []
    async with Catalogue(tmp_path / "single") as cat:
        single_added = 0
        for g, c, path, transcript, texts, sha, size in segments:
            for i, text in enumerate(texts):
                single_added += await cat.call("restore_segments", [(g, c, f"{path}.{i}", transcript, [text], sha,
                                                                     size)])
    # Every line with an id and a kind counts, but for two that add nothing: the second copy of 302
    # (the message keeps the state of its first line) and 300's line read after its tombstone.
    assert batch_added == single_added == 6
    assert dump(tmp_path / "batch") == dump(tmp_path / "single")


async def test_reading_the_segments_again_changes_nothing_and_keeps_unflushed_lines(tmp_path: Path):
    segments = await captured(tmp_path / "live")
    async with Catalogue(tmp_path / "live") as cat:
        await cat.call("add_messages", [rec(400, "not in a segment yet")])
        before = await cat.call("stats")
    before_rows = dump(tmp_path / "live")
    async with Catalogue(tmp_path / "live") as cat:
        # As the rebuild's reader hands them over.
        prepared = [(*s[:4], prepare(s[4], s[0], s[1]), *s[5:]) for s in segments]
        assert await cat.call("restore_segments", prepared) == 0
        assert (await cat.call("stats")).unflushed == before.unflushed == 1
    assert dump(tmp_path / "live") == before_rows


async def test_a_message_record_is_stored_once_until_it_changes(tmp_path: Path):
    async with Catalogue(tmp_path) as cat:
        await cat.call("upsert_channel", {"id": "10", "guild_id": "1", "name": "general"})
        await cat.call("add_messages", [rec(100, "hello"), rec(101, "world")])
        await cat.call("add_revision", 101, {"content": "world!", "edited_at": "2026-01-01T01:00:00Z"})
        assert (await cat.call("message", 100)) == rec(100, "hello")
        assert (await cat.call("message", 101))["content"] == "world!"
    conn = sqlite3.connect(tmp_path / "catalogue.sqlite3")
    try:
        stored = dict(conn.execute("SELECT id, record FROM messages"))
    finally:
        conn.close()
    assert stored[100] == "" and json.loads(stored[101])["content"] == "world!"


async def test_alice_deletes_her_number_and_a_reindex_before_the_rewrite_lands_keeps_it_deleted(tmp_path: Path):
    """``!reindex`` while the deletion's rewrite of the segment still waits in the outbox: the remote
    holds the segment as it was, with her line and her edit's line, and the catalogue, line by line,
    must not take them for lines it lacks (the rewrite would upload them again)."""
    async with Catalogue(tmp_path) as cat:
        await cat.call("upsert_channel", {"id": "10", "guild_id": str(GUILD), "name": "general"})
        # bob's message and his edit, then alice's number and hers: a run of her line alone (the
        # bulk path) and an edit line after it (one by one).
        await cat.call("add_messages", [rec(100, "hello all")], (10, 100))
        await cat.call("add_revision", 100, {"content": "hello everyone", "edited_at": "2026-01-01T01:00:00Z"})
        await cat.call("add_messages", [rec(101, "my number is 555-0100")], (10, 101))
        await cat.call("add_revision", 101, {"content": "my number is 555-0199", "edited_at": "2026-01-01T02:00:00Z"})
        claim = await cat.call("claim_segment", 10, 1000)
        remote = [line(x) for x in claim.lines]  # as it landed
        await cat.call("segment_written", claim.id, "f" * 64, 10)
        await cat.call("delete_message", 101, "2026-01-02T00:00:00Z", keep=False)
        rewrite = (await cat.call("segment_claim", claim.id)).lines
        assert [(x["type"], x["id"]) for x in rewrite] == [("message", "100"), ("revision", "100"),
                                                           ("tombstone", "101")]

        assert await cat.call("restore_segments", [(GUILD, 10, claim.path, claim.transcript,
                                                    prepare(remote, GUILD, 10), None, 10)]) == 0
        assert (await cat.call("segment_claim", claim.id)).lines == rewrite  # what the rewrite uploads
        assert await cat.call("search", "555") == [] and (await cat.call("message", 101))["type"] == "tombstone"

"""The catalogue: a message is archived once, a blob lives while something refers to it, segments are fixed lines."""

from __future__ import annotations

from pathlib import Path

from catalogue import Catalogue, blob_path

SHA_A, SHA_B = "a" * 64, "b" * 64


def rec(mid: int, content: str = "hello", files: list[tuple[int, str, str]] = (), channel: int = 10) -> dict:
    return {"type": "message", "id": str(mid), "channel_id": str(channel), "guild_id": "1", "revision": 0,
            "author": {"id": "7", "name": "alice", "bot": False}, "created_at": "2026-01-01T00:00:00Z",
            "edited_at": None, "content": content, "reply_to": None, "embeds": [], "stickers": [], "reactions": [],
            "attachments": [{"id": str(aid), "filename": name, "size": 3, "content_type": "image/png", "sha256": sha,
                             "blob": blob_path(sha), "status": "saved"} for aid, name, sha in files]}


async def opened(data_dir: Path) -> Catalogue:
    cat = await Catalogue(data_dir).open()
    await cat.call("upsert_channel", {"id": "10", "guild_id": "1", "name": "general", "type": "text"})
    return cat


async def test_a_message_is_archived_once_and_the_cursor_moves_with_it(data_dir: Path):
    cat = await opened(data_dir)
    try:
        assert await cat.call("add_messages", [rec(100), rec(101)], (10, 101)) == 2
        assert await cat.call("add_messages", [rec(101), rec(102)], (10, 102)) == 1
        assert (await cat.call("channel", 10)).cursor == 102
        claim = await cat.call("claim_segment", 10, 1000)
        assert [line["id"] for line in claim.lines] == ["100", "101", "102"]
        assert claim.path == "discord/1/10/messages/100-102.jsonl"
        assert await cat.call("claim_segment", 10, 1000) is None  # claimed lines are never claimed again
        assert await cat.call("segments_to_write") == [claim.id]  # until written: a crash writes it again
        await cat.call("segment_written", claim.id, "f" * 64, 10)
        assert await cat.call("segments_to_write") == []
    finally:
        await cat.close()


async def test_a_blob_is_deleted_only_when_nothing_refers_to_it(data_dir: Path):
    cat = await opened(data_dir)
    try:
        await cat.call("add_blob", SHA_A, 3, None)
        await cat.call("add_blob", SHA_B, 3, None)
        await cat.call("set_blob_state", SHA_A, "landed")
        await cat.call("add_messages", [rec(100, files=[(1, "a.png", SHA_A)]), rec(101, files=[(2, "b.png", SHA_A)]),
                                        rec(102, files=[(3, "c.png", SHA_B)])])
        assert await cat.call("blob_refs", SHA_A) == 2
        first = await cat.call("delete_message", 100, "2026-01-02T00:00:00Z", keep=False)
        assert first.known and first.doomed_blobs == ()  # 101 still refers to the same bytes
        second = await cat.call("delete_message", 101, "2026-01-02T00:00:00Z", keep=False)
        assert [b.sha256 for b in second.doomed_blobs] == [SHA_A] and second.doomed_blobs[0].state == "landed"
        kept = await cat.call("delete_message", 102, "2026-01-02T00:00:00Z", keep=True)
        assert kept.doomed_blobs == () and (await cat.call("blob", SHA_B)).state == "queued"
        assert (await cat.call("message", 100))["type"] == "tombstone"
        assert (await cat.call("message", 102))["content"] == "hello"
    finally:
        await cat.close()


async def test_a_file_an_edit_removed_no_longer_refers_to_its_bytes(data_dir: Path):
    cat = await opened(data_dir)
    try:
        for sha in (SHA_A, SHA_B):
            await cat.call("add_blob", sha, 3, None)
            await cat.call("set_blob_state", sha, "landed")
        await cat.call("add_messages", [rec(100, files=[(1, "a.png", SHA_A), (2, "b.png", SHA_B)]),
                                        rec(101, files=[(3, "b-copy.png", SHA_B)])])
        left = [a for a in (await cat.call("message", 100))["attachments"] if a["id"] == "1"]
        edit = await cat.call("add_revision", 100, {"attachments": left, "edited_at": "2026-01-01T01:00:00Z"},
                              keep=False)
        assert edit.line["attachments"] == left and edit.doomed_blobs == ()  # 101 still has the same bytes
        assert await cat.call("blob_refs", SHA_B) == 1 and await cat.call("blob_refs", SHA_A) == 1
        gone = await cat.call("delete_message", 101, "2026-01-02T00:00:00Z", keep=False)
        assert [b.sha256 for b in gone.doomed_blobs] == [SHA_B]  # the removed file no longer counts
        alone = await cat.call("add_revision", 100, {"attachments": [], "edited_at": "2026-01-01T02:00:00Z"},
                               keep=False)
        assert [(b.sha256, b.state) for b in alone.doomed_blobs] == [(SHA_A, "landed")]
        assert (await cat.call("blob", SHA_A)).state == "doomed"
        assert await cat.call("unarchived_files", 10) == {}
    finally:
        await cat.close()


async def test_with_deleted_content_kept_an_edit_dooms_nothing(data_dir: Path):
    cat = await opened(data_dir)
    try:
        await cat.call("add_blob", SHA_A, 3, None)
        await cat.call("add_messages", [rec(100, files=[(1, "a.png", SHA_A)])])
        edit = await cat.call("add_revision", 100, {"attachments": [], "edited_at": "2026-01-01T01:00:00Z"})
        assert edit.doomed_blobs == () and (await cat.call("blob", SHA_A)).state == "queued"
        assert await cat.call("blob_refs", SHA_A) == 0  # the message has the file no more, all the same
    finally:
        await cat.close()


async def test_files_fetched_again_for_a_message_deleted_meanwhile_doom_only_bytes_nothing_else_names(
        data_dir: Path):
    """Alice's two files failed on Discord's CDN; the next backup fetches them again while she deletes
    her message. Bob posted the same meme: its bytes stay. Kept deleted content takes its files."""
    sha_c = "c" * 64
    cat = await opened(data_dir)
    try:
        for sha in (SHA_A, SHA_B, sha_c):
            await cat.call("add_blob", sha, 3, None)  # as the backup queued them again
        alice = rec(100, "my passport", [(1, "passport.png", SHA_A), (2, "meme.png", SHA_B)])
        kept = rec(102, "kept", [(4, "kept.png", sha_c)])
        for att in (*alice["attachments"], *kept["attachments"]):
            att.update(sha256=None, blob=None, status="failed")
        await cat.call("add_messages", [alice, rec(101, "same meme", [(3, "meme.png", SHA_B)]), kept])
        await cat.call("delete_message", 100, "2026-01-02T00:00:00Z", keep=False)
        await cat.call("delete_message", 102, "2026-01-02T00:00:00Z", keep=True)
        fetched = [{**a, "sha256": sha, "blob": blob_path(sha), "status": "saved"}
                   for a, sha in zip(alice["attachments"], (SHA_A, SHA_B), strict=True)]
        rewrite, doomed = await cat.call("files_fetched_again", 100, fetched)
        assert not rewrite and [b.sha256 for b in doomed] == [SHA_A]  # bob's message names the meme's bytes
        assert (await cat.call("blob", SHA_A)).state == "doomed" and (await cat.call("blob", SHA_B)).state == "queued"
        again = {**kept["attachments"][0], "sha256": sha_c, "blob": blob_path(sha_c), "status": "saved"}
        assert await cat.call("files_fetched_again", 102, [again]) == (False, ())
        assert await cat.call("blob_refs", sha_c) == 1
    finally:
        await cat.close()


async def test_search_index_covers_content_author_and_file_names(data_dir: Path):
    cat = await opened(data_dir)
    try:
        await cat.call("add_messages", [rec(100, "the quarterly report"), rec(101, "lunch?", [(5, "budget.xlsx",
                                                                                               SHA_A)])])
        assert await cat.call("search", "quarterly") == [100]
        assert await cat.call("search", "budget") == [101]
        assert set(await cat.call("search", "alice")) == {100, 101}
        await cat.call("add_revision", 100, {"content": "the annual report", "edited_at": "2026-01-01T01:00:00Z"})
        assert await cat.call("search", "annual") == [100] and await cat.call("search", "quarterly") == []
        await cat.call("delete_message", 101, "2026-01-02T00:00:00Z", keep=False)
        assert await cat.call("search", "budget") == []
    finally:
        await cat.close()


async def test_an_unreadable_catalogue_is_moved_aside(data_dir: Path):
    (data_dir / "catalogue.sqlite3").write_bytes(b"this is not a database" * 100)
    cat = await Catalogue(data_dir).open()
    try:
        assert cat.moved_aside is not None and cat.moved_aside.exists()
        assert (await cat.call("stats")).messages == 0
    finally:
        await cat.close()


async def test_the_manifest_tells_the_remote_only_what_its_segments_hold(data_dir: Path):
    """The local cursor covers lines not in a segment yet; the manifest's stops before the first of them.
    A change made while a manifest is written is not cleared with it."""
    cat = await opened(data_dir)
    try:
        await cat.call("add_messages", [rec(100), rec(101)], (10, 101))
        await cat.call("claim_segment", 10, 2)
        await cat.call("add_messages", [rec(102), rec(103)], (10, 103))  # committed, in no segment yet
        assert (await cat.call("channel", 10)).cursor == 103
        assert await cat.call("manifest_cursor", 10) == 101
        await cat.call("claim_segment", 10, 2)
        assert await cat.call("manifest_cursor", 10) == 103

        due = await cat.call("manifest_due", 10)
        assert due > 0
        await cat.call("mark_manifest_dirty", 10)  # a rename, while that manifest is written
        await cat.call("manifest_queued", 10, due)
        assert await cat.call("manifest_due", 10) > 0  # the rename still gets a manifest of its own
        await cat.call("manifest_queued", 10, await cat.call("manifest_due", 10))
        assert await cat.call("manifest_due", 10) == 0
    finally:
        await cat.close()

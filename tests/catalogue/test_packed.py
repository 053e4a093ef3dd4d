"""Segments read back from the remote are kept whole, and behave as the lines they hold.

After a rebuild, members still edit and delete old messages and ask for them with ``!get``: each
of those finds the message's line in its segment, and a deletion rewrites that segment exactly as
it would have in the catalogue that first wrote it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from catalogue import Catalogue
from tests.catalogue.test_catalogue import rec
from tests.catalogue.test_rebuild import captured, channels_read, dump


def packed_segments(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / "catalogue.sqlite3")
    try:
        return conn.execute("SELECT COUNT(*) FROM packed").fetchone()[0]
    finally:
        conn.close()


async def test_a_rebuilt_catalogue_keeps_each_segment_whole_and_reads_messages_from_it(tmp_path: Path):
    segments = await captured(tmp_path / "live")
    async with Catalogue(tmp_path / "rebuilt") as cat:
        await cat.call("rebuild_mode", True)
        await cat.call("restore_segments", segments)
        await cat.call("rebuild_mode", False)
        assert (await cat.call("stats")).unflushed == 0
        assert await cat.call("message", 104) == rec(104, "same bytes", [(4, "d.png", "a" * 64)])
        got = await cat.call("archived_message", 104, [10])
        assert got.record["content"] == "same bytes" and [f.filename for f in got.files] == ["d.png"]
        assert await cat.call("segment_of", 104) == segments[0][2]
    assert packed_segments(tmp_path / "rebuilt") == len(segments)


async def test_an_edit_after_a_rebuild_starts_from_the_archived_line(tmp_path: Path):
    segments = await captured(tmp_path / "live")
    async with Catalogue(tmp_path / "rebuilt") as cat:
        await cat.call("restore_segments", segments)
        revision = await cat.call("add_revision", 104, {"content": "other bytes", "edited_at": "2026-02-01T00:00:00Z"})
        assert revision.line["revision"] == 1 and revision.doomed_blobs == ()
        assert (await cat.call("message", 104))["attachments"][0]["filename"] == "d.png"
        assert await cat.call("search", "other") == [104] and await cat.call("search", "same") == []
        claim = await cat.call("claim_segment", 10, 1000)  # the edit goes into a new segment, as any edit
        assert [line["type"] for line in claim.lines] == ["revision"]


async def test_a_deletion_after_a_rebuild_rewrites_the_segment_as_the_first_catalogue_would(tmp_path: Path):
    segments = await captured(tmp_path / "live")
    async with Catalogue(tmp_path / "rebuilt") as cat:
        await channels_read(cat, tmp_path / "live")
        await cat.call("restore_segments", segments)
    for folder in ("live", "rebuilt"):
        async with Catalogue(tmp_path / folder) as cat:
            gone = await cat.call("delete_message", 100, "2026-02-02T00:00:00Z", keep=False)
            assert gone.known and gone.dirty_segments == 2  # its line, and its edit in the next segment
            rewritten = [await cat.call("segment_claim", s.id) for s in await cat.call("segments", 10)]
            assert await cat.call("search", "annual") == []
        if folder == "live":
            expected = [(c.path, c.lines) for c in rewritten]
        else:
            assert [(c.path, c.lines) for c in rewritten] == expected and len(expected) == 2
    assert [line["type"] for _, lines in expected for line in lines if line["id"] == "100"] == ["tombstone"]
    assert packed_segments(tmp_path / "rebuilt") == len(segments) - 2  # the other segment stays whole
    assert dump(tmp_path / "rebuilt", {103}) == dump(tmp_path / "live", {103})  # 103 was redacted before

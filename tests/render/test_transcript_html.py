"""The transcript renderer: escaped, Discord-like, and in a real browser its images load from the blobs."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image

from render.discord_markdown import markdown
from render.transcript_html import render_transcript
from tests.support.browser import images_seen, run_chromium

CHANNEL = {"id": "200", "name": "general", "topic": "where it happens"}


def png(colour: tuple[int, int, int] = (88, 101, 242)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 180), colour).save(out, "PNG")
    return out.getvalue()


def record(mid: int, author: str, content: str, **extra) -> dict:
    return {"type": "message", "id": str(mid), "channel_id": "200", "guild_id": "100", "revision": 0,
            "author": {"id": str(1000 + len(author)), "name": author, "bot": False},
            "created_at": f"2026-01-01T10:{mid % 60:02d}:00.000000Z", "edited_at": None, "content": content,
            "reply_to": None, "embeds": [], "stickers": [], "reactions": [], "attachments": [], **extra}


def archive_folder(root: Path) -> tuple[Path, list[dict]]:
    """A segment's transcript beside its blobs, laid out as on the remote."""
    image = png()
    sha = hashlib.sha256(image).hexdigest()
    blob = f"blobs/sha256/{sha[:2]}/{sha}"
    (root / blob).parent.mkdir(parents=True)
    (root / blob).write_bytes(image)
    records = [
        record(1, "alice", "Good **morning** everyone, the _plan_ is in `plan.txt` ||spoiler||"),
        record(2, "bob", "> quoted\nand a picture", reply_to="1", reactions=[{"emoji": "👍", "count": 3}],
               attachments=[{"id": "9", "filename": "sunrise.png", "size": len(image), "content_type": "image/png",
                             "sha256": sha, "blob": blob, "status": "saved"},
                            {"id": "10", "filename": "plan.txt", "size": 12, "content_type": "text/plain",
                             "sha256": None, "blob": None, "status": "too_big"}]),
        {"type": "tombstone", "id": "3", "channel_id": "200", "guild_id": "100",
         "deleted_at": "2026-01-01T11:00:00Z"},
    ]
    page = root / "discord/100/200/transcript/1-3.html"
    page.parent.mkdir(parents=True)
    page.write_text(render_transcript(CHANNEL, records, blob_prefix="../../../../"))
    return page, records


def test_member_text_is_escaped_and_markdown_applied():
    assert markdown("<script>alert(1)</script> **b**") == "&lt;script&gt;alert(1)&lt;/script&gt; <strong>b</strong>"
    page = render_transcript(CHANNEL, [record(1, "<img src=x onerror=alert(1)>", "hi <b>")])
    assert "<img src=x" not in page and "&lt;b&gt;" in page
    assert "<script" not in page.lower()


def test_reads_like_discord(tmp_path: Path):
    page, _ = archive_folder(tmp_path)
    text = page.read_text()
    assert '<div class="avatar"' in text and ">A</div>" in text  # the avatar's initial
    assert "<strong>morning</strong>" in text and "<em>plan</em>" in text and '<span class="spoiler">' in text
    assert '<div class="reply"><a href="#m1">@alice</a>' in text
    assert 'src="../../../../blobs/sha256/' in text
    assert "plan.txt (too large to archive)" in text
    assert "message deleted" in text


def test_in_headless_chromium_the_image_is_loaded(tmp_path: Path):
    page, _ = archive_folder(tmp_path)
    images = images_seen(page)
    assert images and all(i["ok"] for i in images), images

    shot = tmp_path / "transcript.png"
    out = run_chromium("--window-size=900,520", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), out.stderr[-800:]
    with Image.open(shot) as image:
        assert image.size == (900, 520)
        # the picture itself (a solid colour) is on the screenshot, not a broken-image icon
        assert (88, 101, 242) in {image.convert("RGB").getpixel((x, y)) for x in range(0, 900, 4)
                                  for y in range(0, 520, 4)}


def test_the_header_counts_one_message_in_the_singular() -> None:
    one = render_transcript(CHANNEL, [record(1, "alice", "hello")])
    two = render_transcript(CHANNEL, [record(1, "alice", "hello"), record(2, "bob", "hi")])
    assert "· 1 message</p>" in one, one
    assert "· 2 messages</p>" in two, two


def test_a_status_the_renderer_does_not_know_is_shown_as_text_never_as_markup() -> None:
    """A segment from a newer Helix, or one an attacker wrote into the remote, may carry any status."""
    odd = {"id": "9", "filename": "a.png", "size": 1, "sha256": None, "blob": None,
           "status": "<img src=x onerror=alert(1)>"}
    page = render_transcript(CHANNEL, [record(1, "alice", "hi", attachments=[odd])])
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page

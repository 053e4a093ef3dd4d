"""A page of a channel: events, replies, headers, embeds, files by name, the channel as it stands now, and
where a restored page sits among the others."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from render.restore_index import IndexPage, render_index
from render.transcript_html import PageLinks, current_pages, render_transcript
from tests.render.test_transcript_html import CHANNEL, record


def tombstone(mid: int, when: str) -> dict:
    return {"type": "tombstone", "id": str(mid), "channel_id": "200", "guild_id": "100", "deleted_at": when}


def test_a_system_message_is_a_line_of_its_own():
    page = render_transcript(CHANNEL, [record(1, "alice", "Release notes", message_type="thread_created"),
                                       record(2, "bob", "", message_type="pins_add"),
                                       record(3, "carol", "normal words", message_type="reply")])
    assert '<span class="who">alice</span> started a thread: Release notes' in page
    assert '<span class="who">bob</span> pinned a message to this channel.' in page
    assert page.count('<div class="system"') == 2 and page.count('<div class="msg"') == 1


def test_a_reply_preview_is_plain_and_hides_spoilers():
    page = render_transcript(CHANNEL, [record(1, "alice", "**big** news: ||it ships friday||"),
                                       record(2, "bob", "wow", reply_to="1")])
    assert '<div class="reply"><a href="#m1">@alice</a> big news: [spoiler]</div>' in page
    assert "friday" not in page.split('<div class="reply">')[1]


def test_a_reply_to_what_the_page_does_not_hold_says_so_in_words():
    page = render_transcript(CHANNEL, [tombstone(1, "2026-01-01T11:00:00Z"),
                                       record(2, "bob", "what did it say?", reply_to="1"),
                                       record(3, "bob", "and this?", reply_to="77")])
    assert "replying to a deleted message" in page and "replying to an earlier message" in page
    assert "77" not in page.replace('id="m', "")


def test_the_header_has_no_dangling_dot_and_a_thread_names_its_channel():
    page = render_transcript({"id": "200", "name": "general", "topic": None}, [record(1, "alice", "hi")])
    assert "<p>1 message</p>" in page
    thread = {"id": "300", "name": "design", "parent_id": "200", "parent_name": "projects", "type": "public_thread"}
    assert "<p>thread in #projects · 1 message</p>" in render_transcript(thread, [record(1, "alice", "hi")])
    post = {**thread, "parent_name": "help", "parent_type": "forum"}
    assert "<p>post in #help · 1 message</p>" in render_transcript(post, [record(1, "alice", "hi")])


def test_an_embed_shows_its_title_author_fields_and_footer():
    embed = {"type": "rich", "title": "Build 42", "url": "https://ci.example.com/42", "description": "all **green**",
             "author": {"name": "CI"}, "fields": [{"name": "tests", "value": "1,024 passed"}],
             "footer": {"text": "took 3 minutes"}}
    preview = {"type": "link", "url": "https://example.com/post", "provider": {"name": "Example"}}
    page = render_transcript(CHANNEL, [record(1, "ci", "", embeds=[embed, preview])])
    assert '<a href="https://ci.example.com/42">Build 42</a>' in page and "<strong>green</strong>" in page
    assert ">CI</div>" in page and "1,024 passed" in page and "took 3 minutes" in page
    assert '<a href="https://example.com/post">https://example.com/post</a>' in page and "Example" in page


def test_a_restored_file_is_linked_under_its_own_name():
    sha = "ab" * 32
    att = {"id": "9", "filename": "notes v2.txt", "size": 12, "content_type": "text/plain", "sha256": sha,
           "blob": f"blobs/sha256/ab/{sha}", "status": "saved"}
    page = render_transcript(CHANNEL, [record(1, "alice", "", attachments=[att])], blob_prefix="../",
                             files={"9": "files/9/notes v2.txt"})
    assert 'href="../files/9/notes%20v2.txt"' in page
    tampered = {**att, "blob": "../../../etc/passwd"}
    page = render_transcript(CHANNEL, [record(1, "alice", "", attachments=[tampered])], blob_prefix="../")
    assert "passwd" not in page and "not linked" in page


def test_the_current_state_applies_later_edits_and_deletions_in_place():
    first = [record(1, "alice", "first words"), record(2, "bob", "kept then deleted"),
             tombstone(3, "2026-01-02T00:00:00Z")]
    later = [{"type": "revision", "id": "1", "channel_id": "200", "guild_id": "100", "revision": 1,
              "edited_at": "2026-01-01T12:00:00Z", "content": "first words, edited"},
             tombstone(2, "2026-01-03T00:00:00Z")]
    pages = current_pages([first, later])
    assert [i for i, _ in pages] == [0]  # the segment of edits and deletions has no page of its own
    [(_, records)] = pages
    assert [r.get("content") for r in records] == ["first words, edited", "kept then deleted", None]
    page = render_transcript(CHANNEL, records)
    assert "first words, edited" in page and "(edited)" in page and "first words<" not in page
    assert "(deleted 2026-01-03" in page and "message deleted" in page


def test_a_reply_to_a_message_on_another_page_links_there():
    earlier = record(1, "alice", "the plan is ||secret||")
    page = render_transcript(CHANNEL, [record(2, "bob", "agreed", reply_to="1")],
                             elsewhere={"1": ("1-1.html#m1", earlier)})
    assert '<div class="reply"><a href="1-1.html#m1">@alice</a> the plan is [spoiler]</div>' in page


class _Nesting(HTMLParser):
    """Every element closed, in order: enough to catch a nav or a list left open."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open)
        self.open.pop()


def well_nested(page: str) -> bool:
    parser = _Nesting()
    parser.feed(page)
    parser.close()
    return parser.open == []


def test_a_restored_page_links_the_index_and_the_pages_either_side():
    records = [record(1, "alice", "hi"), record(2, "bob", "hello")]
    middle = render_transcript(CHANNEL, records, links=PageLinks(index="../../../../index.html", previous="1-1.html",
                                                                  next="3-4.html", number=2, count=3))
    header, footer = middle.split("<main>")[0], middle.split("</main>")[1]
    for part in (header, footer):  # at the top and after the last message
        assert '<a href="../../../../index.html">All pages</a>' in part
        assert '<a href="1-1.html" rel="prev">← Previous page</a>' in part
        assert '<a href="3-4.html" rel="next">Next page →</a>' in part and "page 2 of 3" in part
    first = render_transcript(CHANNEL, records, links=PageLinks(index="../index.html", next="3-4.html", count=2))
    assert 'rel="prev"' not in first and 'rel="next"' in first
    assert "<nav>" not in render_transcript(CHANNEL, records)  # a segment's own transcript stands alone
    assert well_nested(middle) and well_nested(first)


def test_the_index_tells_pages_of_the_same_day_apart():
    same_instant = [{**record(i, "alice", f"status {i}"), "created_at": "2026-01-01T00:00:00.000000Z"}
                    for i in range(1, 5)]
    spread = [record(5, "bob", "morning"), {**record(6, "bob", "next day"), "created_at": "2026-01-02T09:30:00Z"},
              tombstone(7, "2026-01-03T00:00:00Z")]
    page = render_index("general", [IndexPage("p/1-2.html", same_instant[:2]),
                                    IndexPage("p/3-4.html", same_instant[2:]), IndexPage("p/5-7.html", spread)],
                        [("design", [IndexPage("t/8-8.html", [record(8, "carol", "in the thread")])])])
    items = [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li>.*?</li>", page)]
    assert items == ["Page 1 · 2026-01-01 00:00 UTC · 2 messages (1–2 of 6)",
                     "Page 2 · 2026-01-01 00:00 UTC · 2 messages (3–4 of 6)",
                     "Page 3 · 2026-01-01 10:05 – 2026-01-02 09:30 UTC · 2 messages (5–6 of 6) · 1 deleted",
                     "Page 1 · 2026-01-01 10:08 UTC · 1 message (1 of 1)"], items
    assert '<a href="p/3-4.html">Page 2</a>' in page and well_nested(page)

"""What members typed, as Discord shows it: links, quotes, code, mentions, emoji and times."""

from __future__ import annotations

from render.discord_markdown import markdown, plain

MENTIONS = {"users": {"11": "alice"}, "roles": {"22": "Staff"}, "channels": {"33": "general"}}


def test_a_no_embed_link_is_a_clean_link():
    assert markdown("see <https://example.com/y>") == (
        'see <a href="https://example.com/y">https://example.com/y</a>')


def test_a_link_keeps_its_underscores_and_stars():
    url = "https://example.com/a_x_b/**c**?q=1&r=2"
    html = markdown(f"read {url} now.")
    assert html == (f'read <a href="{url.replace("&", "&amp;")}">{url.replace("&", "&amp;")}</a> now.'), html
    assert "<em>" not in html and "<strong>" not in html


def test_a_masked_link_shows_its_text():
    assert markdown("the [release **notes**](https://example.com/notes_v2_) are out") == (
        'the <a href="https://example.com/notes_v2_">release <strong>notes</strong></a> are out')
    assert markdown("[x](javascript:alert(1))") == "[x](javascript:alert(1))"  # only web links are links


def test_quotes_of_one_line_and_of_the_rest():
    assert markdown("> one line\nafter") == "<blockquote>one line</blockquote>after"
    assert markdown("before\n>>> all\nof this") == "before<blockquote>all\nof this</blockquote>"


def test_bold_italics_nest_properly():
    assert markdown("***c***") == "<strong><em>c</em></strong>"


def test_a_code_block_adds_no_blank_lines_and_keeps_its_markdown_raw():
    assert markdown("before\n```py\nx = **1**\n```\nafter") == "before<pre>x = **1**</pre>after"


def test_nul_characters_in_content_cannot_swap_in_a_code_block():
    text = "a \x000\x00 b ```code``` \x001\x00 \x009\x00"
    html = markdown(text)
    assert html.count("<pre>code</pre>") == 1 and "\x009\x00" in html


def test_mentions_emoji_and_times_read_as_names_and_dates():
    html = markdown("hi <@11> <@!11> <@&22> in <#33>, <:blobwave:1122334455> at <t:1767225600:F>", MENTIONS)
    assert "@alice" in html and "@Staff" in html and "#general" in html and ":blobwave:" in html
    assert "Thursday, 1 January 2026 00:00 UTC" in html
    assert "1122334455" not in html and "&lt;" not in html
    # an archive older than the names falls back to the id
    assert "@99" in markdown("<@99>") and markdown("<t:1767225600>").endswith("1 January 2026 00:00 UTC</span>")


def test_a_preview_is_plain_text_with_its_spoilers_hidden():
    assert plain("**the** answer is ||42|| for <@11>", MENTIONS) == "the answer is [spoiler] for @alice"

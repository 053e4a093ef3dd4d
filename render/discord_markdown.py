"""Discord's Markdown subset, as it renders in a client, turned into HTML (and into plain words).

Pure: text in, a string out. Everything a member wrote is escaped before any markup is applied,
so a message can hold any text and never becomes markup of its own; mentions show the names the
record kept (``mentions``), custom emoji their name, ``<t:…>`` a UTC time.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Held pieces of finished HTML stand in the text as ``<N>``: escaped text never holds a raw "<",
# so nothing a member typed can forge or collide with one.
_HELD = re.compile(r"<(\d+)>")
_CODE_BLOCK = re.compile(r"\n?```(?:[A-Za-z0-9_+#.-]+\n)?\n?(.*?)\n?```\n?", re.DOTALL)
_INLINE_CODE = re.compile(r"``(.+?)``|`([^`\n]+)`")
_NO_EMBED_LINK = re.compile(r"&lt;(https?://(?:(?!&gt;|&lt;)\S)+)&gt;")
_MASKED_LINK = re.compile(r"\[([^\[\]\n]+)\]\(\s*(?:&lt;)?(https?://(?:(?!&gt;)[^\s)\[\]])+)(?:&gt;)?\s*\)")
_URL = re.compile(r"https?://(?:(?!&gt;|&lt;|&quot;|&#x27;)[^\s<])+")
_USER = re.compile(r"&lt;@!?(\d+)&gt;")
_ROLE = re.compile(r"&lt;@&amp;(\d+)&gt;")
_CHANNEL = re.compile(r"&lt;#(\d+)&gt;")
_EMOJI = re.compile(r"&lt;a?:(\w{1,32}):\d+&gt;")
_TIME = re.compile(r"&lt;t:(-?\d{1,12})(?::([tTdDfFR]))?&gt;")
_EMPHASIS = [
    (re.compile(r"\*\*\*(?!\s)(.+?)\*\*\*", re.DOTALL), r"<strong><em>\1</em></strong>"),
    (re.compile(r"\*\*(.+?)\*\*", re.DOTALL), r"<strong>\1</strong>"),
    (re.compile(r"__(.+?)__", re.DOTALL), r"<u>\1</u>"),
    (re.compile(r"(?<![\w*])\*(?!\s)([^*]+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"(?<![\w_])_(?!\s)([^_]+?)(?<!\s)_(?![\w_])"), r"<em>\1</em>"),
    (re.compile(r"~~(.+?)~~", re.DOTALL), r"<s>\1</s>"),
    (re.compile(r"\|\|(.+?)\|\|", re.DOTALL), r'<span class="spoiler">\1</span>'),
]
_TIME_STYLES = {"t": "%H:%M", "T": "%H:%M:%S", "d": "%Y-%m-%d", "D": "%-d %B %Y", "f": "%-d %B %Y %H:%M",
                "F": "%A, %-d %B %Y %H:%M", "R": "%Y-%m-%d %H:%M"}
class _Held:
    """Finished HTML kept out of the text while the Markdown is applied around it."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def __call__(self, piece: str) -> str:
        self.parts.append(piece)
        return f"<{len(self.parts) - 1}>"

    def put_back(self, text: str) -> str:
        for _ in range(4):  # a held piece may hold others (a masked link's text); never deeper than that
            if not _HELD.search(text):
                break
            text = _HELD.sub(lambda m: self.parts[int(m.group(1))], text)
        return text


def _stamp(seconds: str, style: str | None) -> str | None:
    try:
        when = datetime.fromtimestamp(int(seconds), UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return when.strftime(_TIME_STYLES.get(style or "f", _TIME_STYLES["f"])) + " UTC"


def _names(mentions: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any]:
    found = (mentions or {}).get(kind) if isinstance(mentions, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _tokens(text: str, mentions: Mapping[str, Any] | None, wrap: Any) -> str:
    """Mentions by name, custom emoji as ``:name:``, ``<t:…>`` as a UTC time; an unknown id stays an id."""
    users, roles, channels = (_names(mentions, k) for k in ("users", "roles", "channels"))

    def named(prefix: str, table: Mapping[str, Any]) -> Any:
        return lambda m: wrap("mention", prefix + html.escape(str(table.get(m.group(1)) or m.group(1))))

    text = _ROLE.sub(named("@", roles), text)
    text = _USER.sub(named("@", users), text)
    text = _CHANNEL.sub(named("#", channels), text)
    text = _EMOJI.sub(lambda m: wrap("emoji", f":{m.group(1)}:"), text)

    def stamp(m: re.Match[str]) -> str:
        shown = _stamp(m.group(1), m.group(2))
        return m.group(0) if shown is None else wrap("time", shown)

    return _TIME.sub(stamp, text)


def _emphasis(text: str) -> str:
    for pattern, repl in _EMPHASIS:
        text = pattern.sub(repl, text)
    return text


def _quote_groups(text: str) -> list[tuple[bool, str]]:
    """``> `` quotes a line, ``>>> `` the rest of the message; runs of quoted lines are one quote."""
    groups: list[tuple[bool, list[str]]] = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("&gt;&gt;&gt; "):
            rest = [line[13:], *lines[i + 1:]]
            if groups and groups[-1][0]:
                groups[-1][1].extend(rest)
            else:
                groups.append((True, rest))
            break
        quoted = line.startswith("&gt; ")
        body = line[5:] if quoted else line
        if groups and groups[-1][0] == quoted:
            groups[-1][1].append(body)
        else:
            groups.append((quoted, [body]))
    return [(quoted, "\n".join(body)) for quoted, body in groups]


def _bare_link(url: str, held: _Held) -> str:
    rest = ""
    while url[-1] in ".,;:!?)]" and not (url[-1] == ")" and url.count("(") >= url.count(")")):
        url, rest = url[:-1], url[-1] + rest  # a closing bracket stays when the link opened one
    return held(f'<a href="{url}">{url}</a>') + rest


def markdown(text: str, mentions: Mapping[str, Any] | None = None, channels: Mapping[str, str] | None = None) -> str:
    """Discord's Markdown subset (bold, italics, underline, strike, spoilers, code, quotes, links) as HTML.

    ``mentions`` is the record's ``mentions`` object (ids to names); ``channels`` names channels it
    does not. Block elements (a code block, a quote) swallow the line breaks around them, as on Discord.
    """
    held = _Held()
    escaped = html.escape(text or "", quote=True)
    escaped = _CODE_BLOCK.sub(lambda m: held(f"<pre>{m.group(1)}</pre>"), escaped)
    escaped = _INLINE_CODE.sub(lambda m: held(f"<code>{m.group(1) or m.group(2)}</code>"), escaped)
    escaped = _MASKED_LINK.sub(lambda m: held(f'<a href="{m.group(2)}">{_emphasis(m.group(1))}</a>'), escaped)
    escaped = _NO_EMBED_LINK.sub(lambda m: held(f'<a href="{m.group(1)}">{m.group(1)}</a>'), escaped)
    escaped = _URL.sub(lambda m: _bare_link(m.group(0), held), escaped)
    table = dict(mentions or {})
    if channels:
        table["channels"] = {**channels, **_names(mentions, "channels")}
    escaped = _tokens(escaped, table, lambda kind, shown: held(f'<span class="{kind}">{shown}</span>'))
    out = []
    for quoted, body in _quote_groups(escaped):
        body = _emphasis(body)
        out.append(f"<blockquote>{body}</blockquote>" if quoted else body)
    joined = ""
    for i, piece in enumerate(out):
        if i and not out[i - 1].startswith("<blockquote>") and not piece.startswith("<blockquote>"):
            joined += "\n"
        joined += piece
    return held.put_back(joined)


def plain(text: str, mentions: Mapping[str, Any] | None = None) -> str:
    """The words of a message without its Markdown, spoilers hidden: for a one-line preview (not escaped)."""
    held = _Held()
    t = html.escape(text or "", quote=False)
    t = _CODE_BLOCK.sub(lambda m: " " + held(m.group(1)) + " ", t)
    t = _INLINE_CODE.sub(lambda m: held(m.group(1) or m.group(2)), t)
    t = re.sub(r"\|\|(.+?)\|\|", "[spoiler]", t, flags=re.DOTALL)
    t = _MASKED_LINK.sub(lambda m: m.group(1), t)
    t = _NO_EMBED_LINK.sub(lambda m: held(m.group(1)), t)
    t = _URL.sub(lambda m: held(m.group(0)), t)
    t = _tokens(t, mentions, lambda kind, shown: held(shown))
    t = re.sub(r"(?m)^(?:&gt;&gt;&gt;|&gt;) ", "", t)
    for pattern, _ in _EMPHASIS[:-1]:
        t = pattern.sub(lambda m: m.group(1), t)
    return html.unescape(" ".join(held.put_back(t).split()))

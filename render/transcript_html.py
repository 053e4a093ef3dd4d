"""A segment's records as one self-contained HTML page that reads like Discord, offline.

Pure: records in, an HTML string out (no I/O, no Discord). Images are shown inline from the
archive's blobs by a relative link (``blob_prefix`` + the record's ``blob``), other files are
links, so the page works wherever the archive folder is copied (a restore, a synced drive).
Everything a member wrote is escaped before the small Markdown subset is applied.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

_PALETTE = ("#5865f2", "#3ba55c", "#faa61a", "#ed4245", "#eb459e", "#9b59b6", "#1abc9c", "#e67e22")

_CSS = """
body{margin:0;background:#313338;color:#dbdee1;font:15px/1.375 "gg sans","Noto Sans","Helvetica Neue",Arial,sans-serif}
header{padding:12px 16px;border-bottom:1px solid #1f2023;background:#2b2d31}
header h1{margin:0;font-size:16px;color:#f2f3f5} header p{margin:2px 0 0;color:#949ba4;font-size:13px}
main{padding:8px 0 24px}
.msg{display:flex;gap:16px;padding:4px 16px;margin-top:12px}
.msg:hover{background:#2e3035}
.avatar{flex:0 0 40px;height:40px;border-radius:50%;color:#fff;font-weight:600;display:flex;
 align-items:center;justify-content:center;font-size:18px}
.body{min-width:0;flex:1}
.who{color:#f2f3f5;font-weight:500}.bot{background:#5865f2;color:#fff;font-size:10px;padding:1px 4px;
 border-radius:3px;margin-left:4px;vertical-align:2px}
.when{color:#949ba4;font-size:12px;margin-left:8px}.edited{color:#949ba4;font-size:10px;margin-left:4px}
.text{white-space:pre-wrap;word-wrap:break-word}
.reply{color:#b5bac1;font-size:13px;margin-bottom:2px}.reply:before{content:"\\21b3  "}
code{background:#2b2d31;border-radius:3px;padding:0 3px;font-family:Consolas,monospace;font-size:85%}
pre{background:#2b2d31;border:1px solid #1e1f22;border-radius:4px;padding:8px;white-space:pre-wrap}
blockquote{margin:0;padding-left:10px;border-left:4px solid #4e5058}
.spoiler{background:#1e1f22;color:transparent;border-radius:3px}.spoiler:hover{color:inherit}
a{color:#00a8fc;text-decoration:none}
.att img{display:block;max-width:400px;max-height:300px;border-radius:8px;margin-top:6px}
.file{display:inline-block;margin-top:6px;padding:10px;background:#2b2d31;border:1px solid #1e1f22;border-radius:8px}
.note{color:#949ba4;font-style:italic;font-size:13px}
.embed{margin-top:6px;padding:8px 12px;background:#2b2d31;border-left:4px solid #1e1f22;border-radius:4px;
 max-width:520px}
.reactions span{display:inline-block;margin:4px 4px 0 0;padding:0 6px;background:#2b2d31;border-radius:8px;
 font-size:13px}
.rev{color:#949ba4;font-size:13px;margin-top:2px}
"""

_CODE_BLOCK = re.compile(r"```(?:[a-z0-9_+-]*\n)?(.*?)```", re.DOTALL)
_INLINE = [
    (re.compile(r"`([^`\n]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(.+?)\*\*", re.DOTALL), r"<strong>\1</strong>"),
    (re.compile(r"__(.+?)__", re.DOTALL), r"<u>\1</u>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", re.DOTALL), r"<em>\1</em>"),
    (re.compile(r"(?<![\w_])_(?!\s)(.+?)(?<!\s)_(?![\w_])", re.DOTALL), r"<em>\1</em>"),
    (re.compile(r"~~(.+?)~~", re.DOTALL), r"<s>\1</s>"),
    (re.compile(r"\|\|(.+?)\|\|", re.DOTALL), r'<span class="spoiler">\1</span>'),
    (re.compile(r"&lt;@!?(\d+)&gt;"), r'<span class="mention">@\1</span>'),
    (re.compile(r"&lt;#(\d+)&gt;"), r'<span class="mention">#\1</span>'),
    (re.compile(r"(?<![\"'=])(https?://[^\s<]+[^\s<.,;:!?)\]'\"])"), r'<a href="\1">\1</a>'),
]


def markdown(text: str) -> str:
    """Discord's Markdown subset (bold, italics, underline, strike, spoilers, code, quotes, links) as HTML."""
    escaped = html.escape(text or "", quote=True)
    blocks: list[str] = []

    def keep_block(m: re.Match[str]) -> str:
        blocks.append(f"<pre>{m.group(1)}</pre>")
        return f"\x00{len(blocks) - 1}\x00"

    escaped = _CODE_BLOCK.sub(keep_block, escaped)
    lines = []
    for line in escaped.split("\n"):
        quoted = line.startswith("&gt; ")
        body = line[5:] if quoted else line
        for pattern, repl in _INLINE:
            body = pattern.sub(repl, body)
        lines.append(f"<blockquote>{body}</blockquote>" if quoted else body)
    out = "\n".join(lines).replace("</blockquote>\n<blockquote>", "<br>").replace("</blockquote>\n", "</blockquote>")
    return re.sub(r"\x00(\d+)\x00", lambda m: blocks[int(m.group(1))], out)


def _colour(author_id: str) -> str:
    return _PALETTE[int(author_id or 0) % len(_PALETTE)] if str(author_id).isdigit() else _PALETTE[0]


def _when(iso: str | None) -> str:
    if not iso:
        return ""
    return iso.replace("T", " ")[:16] + " UTC"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _attachment(att: Mapping[str, Any], blob_prefix: str) -> str:
    name = html.escape(str(att.get("filename") or "file"))
    status = att.get("status") or ("saved" if att.get("blob") else "missing")
    if status != "saved" or not att.get("blob"):
        why = {"too_big": "too large to archive", "missing": "gone before it could be archived",
               "removed": "removed"}.get(str(status), str(status))
        return f'<div class="note">📎 {name} ({why})</div>'
    href = html.escape(blob_prefix + str(att["blob"]), quote=True)
    if str(att.get("content_type") or "").startswith("image/"):
        return f'<div class="att"><a href="{href}"><img src="{href}" alt="{name}" loading="eager"></a></div>'
    return (f'<div class="att"><a class="file" href="{href}" download="{name}">📄 {name}</a> '
            f'<span class="note">{_size(int(att.get("size") or 0))}</span></div>')


def _embed(embed: Mapping[str, Any]) -> str:
    parts = []
    if embed.get("title"):
        parts.append(f"<strong>{html.escape(str(embed['title']))}</strong>")
    if embed.get("description"):
        parts.append(f'<div class="text">{markdown(str(embed["description"]))}</div>')
    colour = embed.get("color")
    style = f' style="border-left-color:#{int(colour):06x}"' if isinstance(colour, int) else ""
    return f'<div class="embed"{style}>{"".join(parts)}</div>' if parts else ""


def _counted(n: int, noun: str) -> str:
    """``1 message``, ``2 messages``: the renderer is pure, so it has its own copy of the bot's helper."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def render_transcript(channel: Mapping[str, Any], records: Iterable[Mapping[str, Any]], *,
                      blob_prefix: str = "", title: str | None = None) -> str:
    """One HTML page for ``records`` (a segment's lines, in order) of ``channel`` (its channel.json fields)."""
    records = list(records)
    by_id = {str(r.get("id")): r for r in records if r.get("type", "message") == "message"}
    revisions: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        if r.get("type") == "revision":
            revisions.setdefault(str(r.get("id")), []).append(r)
    name = html.escape(str(channel.get("name") or channel.get("id") or "channel"))
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(title) if title else '#' + name}</title><style>{_CSS}</style></head><body>",
           f"<header><h1>#{name}</h1><p>{html.escape(str(channel.get('topic') or ''))} · "
           f"{_counted(len(by_id), 'message')}</p></header><main>"]
    for r in records:
        kind = r.get("type", "message")
        if kind == "revision":
            continue  # shown under their message
        if kind == "tombstone":
            out.append(f'<div class="msg"><div class="avatar" style="background:#4e5058">✕</div><div class="body">'
                       f'<div class="note">message {html.escape(str(r.get("id")))} was deleted '
                       f'{html.escape(_when(r.get("deleted_at")))}</div></div></div>')
            continue
        author = r.get("author") or {}
        who = str(author.get("name") or author.get("id") or "unknown")
        initial = html.escape(who[:1].upper() or "?")
        parts = [f'<div class="msg" id="m{html.escape(str(r.get("id")))}">',
                 f'<div class="avatar" style="background:{_colour(str(author.get("id") or ""))}">{initial}</div>',
                 '<div class="body">']
        if r.get("reply_to"):
            target = by_id.get(str(r["reply_to"]))
            if target is not None:
                snippet = html.escape(str(target.get("content") or "")[:80])
                tname = html.escape(str((target.get("author") or {}).get("name") or ""))
                parts.append(f'<div class="reply"><a href="#m{html.escape(str(r["reply_to"]))}">@{tname}</a> '
                             f"{snippet}</div>")
            else:
                parts.append(f'<div class="reply">replying to message {html.escape(str(r["reply_to"]))}</div>')
        edited = '<span class="edited">(edited)</span>' if r.get("edited_at") or revisions.get(str(r["id"])) else ""
        badge = '<span class="bot">BOT</span>' if author.get("bot") else ""
        parts.append(f'<div><span class="who">{html.escape(who)}</span>{badge}'
                     f'<span class="when">{html.escape(_when(r.get("created_at")))}</span>{edited}</div>')
        if r.get("content"):
            parts.append(f'<div class="text">{markdown(str(r["content"]))}</div>')
        for rev in revisions.get(str(r["id"]), []):
            parts.append(f'<div class="rev">edit {int(rev.get("revision") or 0)} '
                         f'{html.escape(_when(rev.get("edited_at")))}: {markdown(str(rev.get("content") or ""))}'
                         "</div>")
        parts.extend(_embed(e) for e in r.get("embeds") or [] if isinstance(e, Mapping))
        parts.extend(_attachment(a, blob_prefix) for a in r.get("attachments") or [])
        for s in r.get("stickers") or []:
            parts.append(f'<div class="note">sticker: {html.escape(str(s.get("name") or ""))}</div>')
        if r.get("reactions"):
            chips = "".join(f"<span>{html.escape(str(x.get('emoji') or ''))} {int(x.get('count') or 0)}</span>"
                            for x in r["reactions"])
            parts.append(f'<div class="reactions">{chips}</div>')
        parts.append("</div></div>")
        out.append("".join(parts))
    out.append("</main></body></html>")
    return "\n".join(out)

"""A channel's records as one self-contained HTML page that reads like Discord, offline.

Pure: records in, an HTML string out (no I/O, no Discord). Images are shown inline from the
archive's blobs by a relative link (``blob_prefix`` + the record's ``blob``), other files are
links, so the page works wherever the archive folder is copied (a restore, a synced drive).
Everything a member wrote is escaped before the small Markdown subset is applied.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from render.discord_markdown import markdown, plain

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
.deleted{color:#f23f43;font-size:10px;margin-left:4px}
.text{white-space:pre-wrap;word-wrap:break-word}
.reply{color:#b5bac1;font-size:13px;margin-bottom:2px}.reply:before{content:"\\21b3  "}
code{background:#2b2d31;border-radius:3px;padding:0 3px;font-family:Consolas,monospace;font-size:85%}
pre{background:#2b2d31;border:1px solid #1e1f22;border-radius:4px;padding:8px;white-space:pre-wrap;margin:4px 0}
blockquote{margin:0;padding-left:10px;border-left:4px solid #4e5058}
.spoiler{background:#1e1f22;color:transparent;border-radius:3px}.spoiler:hover{color:inherit}
.mention{background:rgba(88,101,242,.3);color:#c9cdfb;border-radius:3px;padding:0 2px}
a{color:#00a8fc;text-decoration:none}
.att img{display:block;max-width:400px;max-height:300px;border-radius:8px;margin-top:6px}
.file{display:inline-block;margin-top:6px;padding:10px;background:#2b2d31;border:1px solid #1e1f22;border-radius:8px}
.note{color:#949ba4;font-style:italic;font-size:13px}
.system{color:#949ba4;padding:2px 16px 2px 72px;margin-top:8px;font-size:14px}
.embed{margin-top:6px;padding:8px 12px;background:#2b2d31;border-left:4px solid #1e1f22;border-radius:4px;
 max-width:520px}
.embed .author,.embed .footer{font-size:12px;color:#b5bac1}.embed .field{margin-top:4px}
.embed .fname{font-weight:600;font-size:13px}
.reactions span{display:inline-block;margin:4px 4px 0 0;padding:0 6px;background:#2b2d31;border-radius:8px;
 font-size:13px}
.rev{color:#949ba4;font-size:13px;margin-top:2px}
.thread{margin-top:4px;font-size:13px}
nav{font-size:13px;color:#949ba4} header nav{margin-top:4px} footer{padding:8px 16px 24px;border-top:1px solid #1f2023}
"""

_BLOB = re.compile(r"^blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}$")
# Message types that are a member's own message; every other type is an event Discord wrote.
_NORMAL_TYPES = frozenset({"", "default", "reply", "chat_input_command", "context_menu_command"})
_SYSTEM_TEXT = {
    "thread_created": "{who} started a thread: {content}",
    "pins_add": "{who} pinned a message to this channel.",
    "new_member": "{who} joined the server.",
    "recipient_add": "{who} added a member to the thread.",
    "recipient_remove": "{who} removed a member from the thread.",
    "channel_name_change": "{who} changed the channel name: {content}",
    "channel_icon_change": "{who} changed the channel icon.",
    "premium_guild_subscription": "{who} boosted the server.",
    "premium_guild_tier_1": "{who} boosted the server; it reached level 1.",
    "premium_guild_tier_2": "{who} boosted the server; it reached level 2.",
    "premium_guild_tier_3": "{who} boosted the server; it reached level 3.",
    "channel_follow_add": "{who} followed {content} into this channel.",
    "call": "{who} started a call.",
    "thread_starter_message": "{who}'s message started this thread.",
}


def _colour(author_id: str) -> str:
    return _PALETTE[int(author_id or 0) % len(_PALETTE)] if str(author_id).isdigit() else _PALETTE[0]


def _when(iso: str | None) -> str:
    if not iso:
        return ""
    return iso.replace("T", " ")[:16] + " UTC"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _href(url: Any) -> str | None:
    """A link out of an embed, only when it is the web's (never ``javascript:`` or a local file)."""
    text = str(url or "")
    return html.escape(text, quote=True) if re.match(r"^https?://\S+$", text) else None


def _attachment(att: Mapping[str, Any], blob_prefix: str, files: Mapping[str, str]) -> str:
    name = html.escape(str(att.get("filename") or "file"))
    status = att.get("status") or ("saved" if att.get("blob") else "missing")
    if status != "saved" or not att.get("blob"):
        why = {"too_big": "too large to archive", "missing": "gone before it could be archived", "removed": "removed",
               "failed": "Discord's CDN failed to send it: the next backup tries again"}.get(
            str(status), html.escape(str(status)))
        return f'<div class="note">📎 {name} ({why})</div>'
    blob = str(att["blob"])
    if not _BLOB.match(blob):
        return f'<div class="note">📎 {name} (its path in the archive is not a blob\'s: not linked)</div>'
    # A restored folder has the file under its own name too: a browser then knows its type (an SVG
    # shows) and saves it under that name (``download=`` is ignored on file:// pages).
    target = files.get(str(att.get("id"))) or blob
    href = html.escape(blob_prefix + quote(target, safe="/"), quote=True)
    if str(att.get("content_type") or "").startswith("image/"):
        return f'<div class="att"><a href="{href}"><img src="{href}" alt="{name}" loading="eager"></a></div>'
    return (f'<div class="att"><a class="file" href="{href}" download="{name}">📄 {name}</a> '
            f'<span class="note">{_size(int(att.get("size") or 0))}</span></div>')


def _linked(text: Any, url: Any) -> str:
    shown = html.escape(str(text))
    href = _href(url)
    return f'<a href="{href}">{shown}</a>' if href else shown


def _embed(embed: Mapping[str, Any], mentions: Mapping[str, Any] | None) -> str:
    parts = []
    author = embed.get("author") if isinstance(embed.get("author"), Mapping) else {}
    if author.get("name"):
        parts.append(f'<div class="author">{_linked(author["name"], author.get("url"))}</div>')
    if embed.get("title"):
        parts.append(f"<div><strong>{_linked(embed['title'], embed.get('url'))}</strong></div>")
    if embed.get("description"):
        parts.append(f'<div class="text">{markdown(str(embed["description"]), mentions)}</div>')
    for field in embed.get("fields") or []:
        if isinstance(field, Mapping) and (field.get("name") or field.get("value")):
            parts.append(f'<div class="field"><div class="fname">{markdown(str(field.get("name") or ""), mentions)}'
                         f'</div><div class="text">{markdown(str(field.get("value") or ""), mentions)}</div></div>')
    footer = embed.get("footer") if isinstance(embed.get("footer"), Mapping) else {}
    if footer.get("text"):
        parts.append(f'<div class="footer">{html.escape(str(footer["text"]))}</div>')
    if not embed.get("title") and _href(embed.get("url")):
        # a link preview: its page, by the site's name when Discord sent one
        provider = embed.get("provider") if isinstance(embed.get("provider"), Mapping) else {}
        site = f'<div class="author">{html.escape(str(provider["name"]))}</div>' if provider.get("name") else ""
        parts.insert(0, f'{site}<div>{_linked(embed["url"], embed["url"])}</div>')
    colour = embed.get("color")
    style = f' style="border-left-color:#{int(colour):06x}"' if isinstance(colour, int) else ""
    return f'<div class="embed"{style}>{"".join(parts)}</div>' if parts else ""


@dataclass(frozen=True)
class PageLinks:
    """Where a restored page sits among the others, so a reader can walk the folder without going
    back to the index. Each href is relative to the page: the folder must work wherever it is copied."""

    index: str
    previous: str | None = None
    next: str | None = None
    number: int = 1
    count: int = 1


def _nav(links: PageLinks) -> str:
    def a(href: str, text: str, rel: str = "") -> str:
        return f'<a href="{html.escape(quote(href, safe="/#"), quote=True)}"{rel}>{text}</a>'

    parts = [a(links.index, "All pages")]
    if links.previous:
        parts.append(a(links.previous, "← Previous page", ' rel="prev"'))
    parts.append(f"page {links.number:,} of {links.count:,}")
    if links.next:
        parts.append(a(links.next, "Next page →", ' rel="next"'))
    return f'<nav>{" · ".join(parts)}</nav>'


def _counted(n: int, noun: str) -> str:
    """``1 message``, ``2 messages``: the renderer is pure, so it has its own copy of the bot's helper."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _where(channel: Mapping[str, Any]) -> str | None:
    """For a thread or a forum post: the channel it belongs to, by name when the caller knows it."""
    if not channel.get("parent_id"):
        return None
    what = "post" if channel.get("parent_type") == "forum" else "thread"
    parent = channel.get("parent_name")
    return f"{what} in #{parent}" if parent else f"{what} in channel {channel['parent_id']}"


def _reply(r: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]],
           elsewhere: Mapping[str, tuple[str, Mapping[str, Any]]]) -> str:
    target_id = str(r["reply_to"])
    href, target = f"#m{target_id}", by_id.get(target_id)
    if target is None and target_id in elsewhere:
        href, target = elsewhere[target_id]
    if target is None:
        return '<div class="reply">replying to an earlier message</div>'
    if target.get("type") == "tombstone" or target.get("deleted_at"):
        return '<div class="reply">replying to a deleted message</div>'
    preview = plain(str(target.get("content") or ""), target.get("mentions"))
    preview = preview if len(preview) <= 80 else preview[:79] + "…"
    if not preview and target.get("attachments"):
        preview = "(a file)"
    tname = html.escape(str((target.get("author") or {}).get("name") or ""))
    return f'<div class="reply"><a href="{html.escape(href, quote=True)}">@{tname}</a> {html.escape(preview)}</div>'


def _system(r: Mapping[str, Any], who: str, kind: str, threads: Mapping[str, tuple[str, str]]) -> str:
    template = _SYSTEM_TEXT.get(kind, "{who}: " + kind.replace("_", " ") + " {content}")
    content = html.escape(str(r.get("content") or ""))
    if kind == "thread_created":
        for href, name in threads.values():
            if name == r.get("content"):
                content = f'<a href="{html.escape(href, quote=True)}">{content}</a>'
                break
    line = template.format(who=f'<span class="who">{html.escape(who)}</span>', content=content).rstrip()
    return (f'<div class="system" id="m{html.escape(str(r.get("id")))}">{line} '
            f'<span class="when">{html.escape(_when(r.get("created_at")))}</span></div>')


def render_transcript(channel: Mapping[str, Any], records: Iterable[Mapping[str, Any]], *,
                      blob_prefix: str = "", title: str | None = None, files: Mapping[str, str] | None = None,
                      elsewhere: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
                      threads: Mapping[str, tuple[str, str]] | None = None,
                      channels: Mapping[str, str] | None = None, links: PageLinks | None = None) -> str:
    """One HTML page for ``records`` (a segment's lines, in order) of ``channel`` (its channel.json fields).

    A page of a restore passes more: ``files`` (attachment id to its path under its own name),
    ``elsewhere`` (the channel's messages on other pages, id to (href, record), for replies),
    ``threads`` (starter message id to (href, name)), ``channels`` (id to name, for mentions),
    ``links`` (the index and the pages either side, shown above and below the messages).
    ``channel`` may carry ``parent_name`` and ``parent_type`` for a thread's header.
    """
    records = list(records)
    files, elsewhere, threads = files or {}, elsewhere or {}, threads or {}
    by_id = {str(r.get("id")): r for r in records if r.get("type", "message") in ("message", "tombstone")}
    revisions: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        if r.get("type") == "revision":
            revisions.setdefault(str(r.get("id")), []).append(r)
    name = html.escape(str(channel.get("name") or channel.get("id") or "channel"))
    count = sum(1 for r in records if r.get("type", "message") == "message")
    about = [x for x in (_where(channel), channel.get("topic"), _counted(count, "message")) if x]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(title) if title else '#' + name}</title><style>{_CSS}</style></head><body>",
           f"<header><h1>#{name}</h1><p>{html.escape(' · '.join(str(x) for x in about))}</p>"
           f"{_nav(links) if links else ''}</header><main>"]
    for r in records:
        kind = r.get("type", "message")
        if kind == "revision":
            continue  # shown under their message
        rid = html.escape(str(r.get("id")))
        if kind == "tombstone":
            out.append(f'<div class="msg" id="m{rid}"><div class="avatar" style="background:#4e5058">✕</div>'
                       f'<div class="body"><div class="note">message deleted '
                       f'{html.escape(_when(r.get("deleted_at")))}</div></div></div>')
            continue
        author = r.get("author") or {}
        who = str(author.get("name") or author.get("id") or "unknown")
        mtype = str(r.get("message_type") or "")
        if mtype not in _NORMAL_TYPES:
            out.append(_system(r, who, mtype, threads))
            continue
        mentions = r.get("mentions") if isinstance(r.get("mentions"), Mapping) else None
        initial = html.escape(who[:1].upper() or "?")
        parts = [f'<div class="msg" id="m{rid}">',
                 f'<div class="avatar" style="background:{_colour(str(author.get("id") or ""))}">{initial}</div>',
                 '<div class="body">']
        if r.get("reply_to"):
            parts.append(_reply(r, by_id, elsewhere))
        edited = '<span class="edited">(edited)</span>' if r.get("edited_at") or revisions.get(str(r["id"])) else ""
        deleted = (f'<span class="deleted">(deleted {html.escape(_when(r["deleted_at"]))})</span>'
                   if r.get("deleted_at") else "")
        badge = '<span class="bot">BOT</span>' if author.get("bot") else ""
        parts.append(f'<div><span class="who">{html.escape(who)}</span>{badge}'
                     f'<span class="when">{html.escape(_when(r.get("created_at")))}</span>{edited}{deleted}</div>')
        if r.get("content"):
            parts.append(f'<div class="text">{markdown(str(r["content"]), mentions, channels)}</div>')
        for rev in revisions.get(str(r["id"]), []):
            parts.append(f'<div class="rev">edit {int(rev.get("revision") or 0)} '
                         f'{html.escape(_when(rev.get("edited_at")))}: '
                         f'{markdown(str(rev.get("content") or ""), mentions, channels)}</div>')
        parts.extend(_embed(e, mentions) for e in r.get("embeds") or [] if isinstance(e, Mapping))
        parts.extend(_attachment(a, blob_prefix, files) for a in r.get("attachments") or [])
        for s in r.get("stickers") or []:
            parts.append(f'<div class="note">sticker: {html.escape(str(s.get("name") or ""))}</div>')
        if r.get("reactions"):
            chips = "".join(f"<span>{html.escape(str(x.get('emoji') or ''))} {int(x.get('count') or 0)}</span>"
                            for x in r["reactions"])
            parts.append(f'<div class="reactions">{chips}</div>')
        if str(r.get("id")) in threads:
            href, tname = threads[str(r.get("id"))]
            parts.append(f'<div class="thread">thread: <a href="{html.escape(href, quote=True)}">'
                         f"{html.escape(tname)}</a></div>")
        parts.append("</div></div>")
        out.append("".join(parts))
    out.append(f"</main><footer>{_nav(links)}</footer></body></html>" if links else "</main></body></html>")
    return "\n".join(out)


def current_pages(segments: Sequence[Sequence[Mapping[str, Any]]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """A channel's segments (in the order written) as it stands now: (segment index, records) per page.

    Each message is shown where its ``message`` line is, in its last state: its revisions applied
    (they may be in later segments), and ``deleted_at`` set when a tombstone followed it
    (``HELIX_KEEP_DELETED``). A tombstone with no message line took that line's place and is shown
    there. A segment with no message line (only edits or deletions of earlier ones) has no page.
    """
    messages: dict[str, dict[str, Any]] = {}
    revisions: dict[str, list[Mapping[str, Any]]] = {}
    tombstones: dict[str, Mapping[str, Any]] = {}
    slots: list[tuple[int, str, Mapping[str, Any] | None]] = []
    for i, segment in enumerate(segments):
        for r in segment:
            kind, mid = r.get("type", "message"), str(r.get("id"))
            if kind == "message" and mid not in messages:
                messages[mid] = dict(r)
                slots.append((i, mid, None))
            elif kind == "revision":
                revisions.setdefault(mid, []).append(r)
            elif kind == "tombstone" and mid not in tombstones:
                tombstones[mid] = r
                slots.append((i, mid, r))
    pages: dict[int, list[dict[str, Any]]] = {}
    for i, mid, tomb in slots:
        if tomb is not None:
            if mid not in messages:
                pages.setdefault(i, []).append(dict(tomb))
            continue
        record = messages[mid]
        for rev in sorted(revisions.get(mid, []), key=lambda x: int(x.get("revision") or 0)):
            record.update({k: v for k, v in rev.items() if k not in ("type", "id", "channel_id", "guild_id")})
        if mid in tombstones:
            record["deleted_at"] = tombstones[mid].get("deleted_at") or "?"
        pages.setdefault(i, []).append(record)
    return sorted(pages.items())

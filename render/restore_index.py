"""The first page of a restored folder: a channel's pages, then its threads' and posts', as links.

Pure: page records in, an HTML string out. A busy channel fills several pages within one day (a
backup can even archive them all at the same instant), so a date alone does not tell them apart:
each entry gives its page number, the time span of its messages, how many it holds and where they
stand in the channel's count, in the order the pages were written.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

# Marks an index.html as a restore's own: a later restore may replace it, never anyone else's.
MARK = '<meta name="generator" content="Helix restore">'
_CSS = ("body{margin:0;padding:16px 24px;background:#313338;color:#dbdee1;font:15px/1.5 \"Noto Sans\",Arial,"
        "sans-serif}a{color:#00a8fc;text-decoration:none}h1,h2,h3{color:#f2f3f5}h3{font-size:15px}"
        ".n{color:#949ba4}")


@dataclass(frozen=True)
class IndexPage:
    """One restored page: its href (relative to the index) and its records as the page shows them."""

    href: str
    records: Sequence[Mapping[str, Any]]


def _minute(iso: str) -> tuple[str, str]:
    return iso[:10], iso[11:16]


def _span(records: Sequence[Mapping[str, Any]]) -> str:
    times = [str(r["created_at"]) for r in records if r.get("created_at")]
    if not times:
        return ""
    (day0, t0), (day1, t1) = _minute(min(times)), _minute(max(times))
    if (day0, t0) == (day1, t1):
        return f"{day0} {t0} UTC"
    return f"{day0} {t0} – {t1} UTC" if day0 == day1 else f"{day0} {t0} – {day1} {t1} UTC"


def _entries(pages: Sequence[IndexPage]) -> str:
    if not pages:
        return "<p>No messages.</p>"
    total = sum(1 for p in pages for r in p.records if r.get("type", "message") == "message")
    items, before = [], 0
    for number, page in enumerate(pages, 1):
        count = sum(1 for r in page.records if r.get("type", "message") == "message")
        deleted = sum(1 for r in page.records if r.get("type") == "tombstone")
        about = [x for x in (_span(page.records),) if x]
        if count:
            where = f"{before + 1:,}" if count == 1 else f"{before + 1:,}–{before + count:,}"
            about.append(f"{count:,} message{'' if count == 1 else 's'} ({where} of {total:,})")
        if deleted:
            about.append(f"{deleted:,} deleted")
        before += count
        href = html.escape(quote(page.href, safe="/#"), quote=True)
        items.append(f'<li><a href="{href}">Page {number:,}</a> <span class="n">· '
                     f'{html.escape(" · ".join(about))}</span></li>')
    return f"<ol>{''.join(items)}</ol>"


def render_index(name: str, pages: Sequence[IndexPage],
                 threads: Sequence[tuple[str, Sequence[IndexPage]]] = ()) -> str:
    """The index of a restore of channel ``name``: its ``pages``, then each thread's (name, pages)."""
    title = html.escape(f"#{name}")
    body = [f"<h1>{title}</h1>", _entries(pages)]
    if threads:
        body.append("<h2>Threads and posts</h2>")
        body.extend(f"<h3>{html.escape(tname)}</h3>{_entries(tpages)}" for tname, tpages in threads)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{MARK}<title>{title}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")

"""A segment's text lines turned into the catalogue's rows, outside the database thread.

Pure and thread-safe: the rebuild calls ``prepare`` in a reader thread while the database thread
writes the batch before, so parsing and writing overlap. Each value mirrors the one-by-one path
of ``_rebuild.py`` (``_restore_message``) exactly; a line that path would treat differently (an
edit, a deletion, an odd value) is kept whole as an ``Other`` and takes that path in its place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("helix.catalogue.rebuild")


@dataclass(frozen=True, slots=True)
class Plain:
    """A message line the bulk path takes: its rows, less what only the database thread knows."""

    mid: int
    text: str
    message: tuple[Any, ...]  # author_id, author_name, created_at, edited_at, content, reply_to
    words: tuple[str, str, str]  # content, author, files: the FTS5 columns
    files: tuple[tuple[Any, ...], ...]  # id, filename, size, content_type, sha256, state
    blobs: tuple[tuple[str, int], ...]  # sha256, size of the saved files


@dataclass(frozen=True, slots=True)
class Other:
    """Any other line with an id (an edit, a deletion, a message with odd values): one by one."""

    mid: int
    text: str
    line: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A segment's lines that the rebuild reads (objects with an id), in the file's order."""

    lines: tuple[Plain | Other, ...]


def prepare(texts: Iterable[str], where: str = "") -> Prepared:
    """Parse a segment's lines; a line that is not JSON is skipped with a warning, not fatal."""
    out: list[Plain | Other] = []
    for text in texts:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            log.warning("rebuild_bad_line", file=where)
            continue
        if not isinstance(obj, dict) or "id" not in obj:
            continue
        out.append(_plain(obj, text) or Other(int(obj["id"]), text, obj))
    return Prepared(tuple(out))


def prepared(lines: Sequence[str] | Sequence[dict[str, Any]] | Prepared) -> Prepared:
    """``restore_segments`` takes texts, parsed objects (written as Helix writes them) or ``prepare``'s output."""
    if isinstance(lines, Prepared):
        return lines
    return prepare(x if isinstance(x, str) else _dumps(x) for x in lines)


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _plain(rec: dict[str, Any], text: str) -> Plain | None:
    if (rec.get("type") or "message") != "message":
        return None
    try:
        mid = int(rec["id"])
        author = rec.get("author") or {}
        name = str(author.get("name") or "")
        content = rec.get("content") or ""
        atts = rec.get("attachments") or []
        files = tuple((int(a["id"]), str(a.get("filename") or ""), int(a.get("size") or 0), a.get("content_type"),
                       a.get("sha256"), a.get("status") or ("saved" if a.get("sha256") else "missing"))
                      for a in atts)
        blobs = tuple((str(a["sha256"]), int(a.get("size") or 0)) for a in atts
                      if a.get("sha256") and (a.get("status") or "saved") == "saved")
        message = (int(author.get("id") or 0), name, rec.get("created_at") or "", rec.get("edited_at"), content,
                   int(rec["reply_to"]) if rec.get("reply_to") else None)
        words = (content, name, " ".join(str(a.get("filename") or "") for a in atts))
    except (ValueError, TypeError, AttributeError, KeyError):
        return None  # the one-by-one path meets the same value and says what it makes of it
    return Plain(mid, text, message, words, files, blobs)

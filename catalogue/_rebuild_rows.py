"""A segment's text turned into the catalogue's rows, outside the database thread.

Pure and thread-safe: the rebuild calls ``prepare`` in a reader thread while the database thread
writes the batch before, so parsing and writing overlap. A segment is decoded in one call by a
compiled decoder that reads only the fields the catalogue keeps (``_Line``); a segment it
refuses (a line that is not JSON, or a value of another type) is read line by line with the
standard library instead, where each value mirrors the one-by-one path of ``_rebuild.py``
(``_restore_message``) exactly. A line that path would treat differently (an edit, a deletion,
an odd value) is kept whole as an ``Other`` and takes that path in its place.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from catalogue._revisions import ROW_STATES
from catalogue._schema import blob_path, file_names, record_json

log = structlog.get_logger("helix.catalogue.rebuild")


class Plain(msgspec.Struct, frozen=True, gc=False):
    """A message line the bulk path takes: its rows, as the database thread writes them. Not
    tracked by the garbage collector: it holds only tuples of plain values, and a rebuild makes
    one per message."""

    mid: int
    # messages: id, guild, channel, author id and name, created, edited, content, reply, files, archived
    row: tuple[Any, ...]
    files: tuple[tuple[Any, ...], ...]  # attachments: id, message, channel, filename, size, content type, sha256, state
    blobs: tuple[tuple[Any, ...], ...]  # blobs of the saved files: sha256, size, path, created


@dataclass(frozen=True, slots=True)
class Other:
    """Any other line with an id (an edit, a deletion, a message with odd values): one by one."""

    mid: int
    line: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A segment's lines that the rebuild reads (objects with an id), in the file's order, and the
    segment's text: the catalogue keeps a segment it reads whole (``_packed.py``)."""

    lines: tuple[Plain | Other, ...]
    data: bytes  # the segment's text, UTF-8
    packed: bytes  # the same, compressed, as the catalogue keeps it
    kept: tuple[int, ...] | None = None  # which of the text's lines ``lines`` are, when not all of them

    @property
    def ids(self) -> tuple[int, int]:
        """The smallest and largest id among the lines."""
        mids = [x.mid for x in self.lines]
        return min(mids), max(mids)

    def texts(self) -> list[str]:
        """Each line's text, in the same order as ``lines``."""
        texts = _texts(self.data.decode("utf-8", "replace"))
        return texts if self.kept is None else [texts[i] for i in self.kept]


class _Author(msgspec.Struct, frozen=True, gc=False):
    id: str | int = 0
    name: str = ""


class _File(msgspec.Struct, frozen=True, gc=False):
    id: str | int
    filename: str = ""
    size: int = 0
    content_type: str | None = None
    sha256: str | None = None
    status: str | None = None


class _Line(msgspec.Struct, frozen=True, gc=False):
    """What the catalogue reads of a line; every other field is skipped without being built."""

    id: str | int
    type: str = "message"
    author: _Author = _Author()
    created_at: str = ""
    edited_at: str | None = None
    content: str = ""
    reply_to: str | int | None = None
    attachments: tuple[_File, ...] = ()


_DECODER = msgspec.json.Decoder(_Line)
PACK_LEVEL = 1  # zlib's fastest: JSON lines shrink several times over even so


def prepare(source: bytes | str | Iterable[str], guild_id: int, channel_id: int, where: str = "") -> Prepared:
    """Parse a segment of a channel (its file's bytes or text, or its lines); a line that is not
    JSON is skipped with a warning, not fatal."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, str):
        data = source.encode("utf-8")
    else:
        data = "\n".join(t.strip() for t in source).encode("utf-8")
    packed = zlib.compress(data, PACK_LEVEL)  # zlib lets go of the interpreter: the database thread goes on
    now = time.time()
    try:
        decoded = _DECODER.decode_lines(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return _line_by_line(_texts(data.decode("utf-8", "replace")), data, packed, guild_id, channel_id, now, where)
    out: list[Plain | Other] = []
    texts: list[str] | None = None
    for i, obj in enumerate(decoded):
        line = _fast(obj, guild_id, channel_id, now) if obj.type == "message" else None
        if line is None:
            texts = texts if texts is not None else _texts(data.decode("utf-8", "replace"))
            line = _slow(texts[i], guild_id, channel_id, now, where)
        out.append(line)  # not None: the decoder read an object with an id from this line
    return Prepared(tuple(out), data, packed)


def prepared(lines: Sequence[str] | Sequence[dict[str, Any]] | Prepared, guild_id: int, channel_id: int) -> Prepared:
    """``restore_segments`` takes texts, parsed objects (written as Helix writes them) or ``prepare``'s output."""
    if isinstance(lines, Prepared):
        return lines
    return prepare([x if isinstance(x, str) else record_json(x) for x in lines], guild_id, channel_id)


def _texts(body: str) -> list[str]:
    return [t for t in (raw.strip() for raw in body.split("\n")) if t]


def _line_by_line(texts: list[str], data: bytes, packed: bytes, gid: int, cid: int, now: float,
                  where: str) -> Prepared:
    lines, kept = [], []
    for i, text in enumerate(texts):
        line = _slow(text, gid, cid, now, where)
        if line is not None:
            lines.append(line)
            kept.append(i)
    return Prepared(tuple(lines), data, packed, None if len(kept) == len(texts) else tuple(kept))


def _slow(text: str, gid: int, cid: int, now: float, where: str) -> Plain | Other | None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        log.warning("rebuild_bad_line", file=where)
        return None
    if not isinstance(obj, dict) or "id" not in obj:
        return None
    return _plain(obj, gid, cid, now) or Other(int(obj["id"]), obj)


def _fast(rec: _Line, gid: int, cid: int, now: float) -> Plain | None:
    """``_plain`` for a decoded line: the same values from the same fields."""
    try:
        mid = int(rec.id)
        author = rec.author
        atts = rec.attachments
        if atts:
            files = tuple((int(a.id), mid, cid, a.filename, a.size, a.content_type, a.sha256,
                           _state(a.status, a.sha256)) for a in atts)
            blobs = tuple((a.sha256, a.size, blob_path(a.sha256), now) for a in atts
                          if a.sha256 and (a.status or "saved") == "saved")
            names = " ".join(a.filename for a in atts)
        else:
            files = blobs = ()
            names = ""
        row = (mid, gid, cid, int(author.id or 0), author.name, rec.created_at, rec.edited_at, rec.content,
               int(rec.reply_to) if rec.reply_to else None, names, now)
    except (ValueError, TypeError):
        return None  # the one-by-one path meets the same value and says what it makes of it
    return Plain(mid, row, files, blobs)


def _plain(rec: dict[str, Any], gid: int, cid: int, now: float) -> Plain | None:
    if (rec.get("type") or "message") != "message":
        return None
    try:
        mid = int(rec["id"])
        author = rec.get("author") or {}
        atts = rec.get("attachments") or []
        files = tuple((int(a["id"]), mid, cid, str(a.get("filename") or ""), int(a.get("size") or 0),
                       a.get("content_type"), a.get("sha256"),
                       _state(a.get("status"), a.get("sha256"))) for a in atts)
        blobs = tuple((str(a["sha256"]), int(a.get("size") or 0), blob_path(str(a["sha256"])), now) for a in atts
                      if a.get("sha256") and (a.get("status") or "saved") == "saved")
        row = (mid, gid, cid, int(author.get("id") or 0), str(author.get("name") or ""), rec.get("created_at") or "",
               rec.get("edited_at"), rec.get("content") or "", int(rec["reply_to"]) if rec.get("reply_to") else None,
               file_names(rec), now)
    except (ValueError, TypeError, AttributeError, KeyError):
        return None  # the one-by-one path meets the same value and says what it makes of it
    return Plain(mid, row, files, blobs)


def _state(status: str | None, sha256: str | None) -> str:
    """An attachment's row state from its line's status (``ROW_STATES``: as ``_put_attachments`` writes it)."""
    state = status or ("saved" if sha256 else "missing")
    return ROW_STATES.get(state, state)

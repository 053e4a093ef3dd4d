"""Archive records in the documented format (docs/ARCHIVE_FORMAT.md), for tests that need a filled catalogue."""

from __future__ import annotations

from datetime import date
from typing import Any

from catalogue._search import first_id_of


def snowflake(seq: int, day: str) -> int:
    """A Discord id for a message posted at noon (UTC) of ``day``; ``seq`` is its low bits (``id & 0x3FFFFF``)."""
    return first_id_of(date.fromisoformat(day)) + (43_200_000 << 22) + seq


def record(mid: int, channel_id: int, content: str, *, guild_id: int = 1, author: tuple[int, str] = (7, "alice"),
           day: str = "2026-01-05", files: list[tuple[str, str, int, str | None]] = ()) -> dict[str, Any]:
    """A message line with id ``snowflake(mid, day)``; ``files`` are (filename, content_type, size, sha256 or None)."""
    seq, mid = mid, snowflake(mid, day)
    atts = [{"id": str(seq * 10 + i), "filename": name, "content_type": ctype, "size": size, "sha256": sha,
             "blob": f"blobs/sha256/{sha[:2]}/{sha}" if sha else None, "status": "saved" if sha else "missing"}
            for i, (name, ctype, size, sha) in enumerate(files)]
    return {"type": "message", "id": str(mid), "channel_id": str(channel_id), "guild_id": str(guild_id),
            "revision": 0, "author": {"id": str(author[0]), "name": author[1], "bot": False},
            "created_at": f"{day}T12:00:00.000000Z", "edited_at": None, "content": content, "reply_to": None,
            "embeds": [], "stickers": [], "reactions": [], "attachments": atts}


def channel(cid: int, name: str, guild_id: int = 1) -> dict[str, Any]:
    return {"id": str(cid), "guild_id": str(guild_id), "name": name, "type": "text", "topic": None,
            "parent_id": None}

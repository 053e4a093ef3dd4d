"""Reading what the bot did back out of SimCord's request log: its messages, edits and replies.

One parser for the demo's transcript, the tests' assertions and the benchmark's timings, so
they all agree on what counts as "the bot said something".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

# A message posted or edited in a channel, or through an interaction's webhook (followups, edits
# of the original response).
MESSAGE_PATH = re.compile(r"^/(channels/\d+/messages(/\d+)?|webhooks/\d+/[^/]+(/messages/(\d+|@original))?)$")


def is_message(method: str, path: str) -> bool:
    return method in ("POST", "PATCH") and bool(MESSAGE_PATH.match(path.split("?")[0]))


def bot_messages(requests: Iterable[Any]) -> list[dict[str, Any]]:
    """Messages the bot posted or edited, as sent: method, path, content, embeds, attachments.

    A message is a POST or PATCH to a channel or webhook, or an interaction callback with data.
    """
    out = []
    for req in requests:
        path = req.path.split("?")[0]
        if req.method not in ("POST", "PATCH") or not isinstance(req.json, dict):
            continue
        if path.endswith("/callback"):
            if isinstance(req.json.get("data"), dict):
                out.append({"method": req.method, "path": path, **req.json["data"]})
        elif MESSAGE_PATH.match(path):
            out.append({"method": req.method, "path": path, **req.json})
    return out


def transcript_lines(requests: Iterable[Any]) -> list[str]:
    """What the bot did, as the demo prints it: ``›`` for a new message, ``✎`` for an edit."""
    lines: list[str] = []
    for req in requests:
        path = req.path.split("?")[0]
        if path.endswith("/callback") and isinstance(req.json, dict):
            if req.json.get("type") == 5:
                lines.append("  helix is thinking…")
            elif isinstance(req.json.get("data"), dict):
                lines.extend(describe("›", req.json["data"]))
            continue
        if not MESSAGE_PATH.match(path) or not isinstance(req.json, dict):
            continue
        if req.method == "POST":
            lines.extend(describe("›", req.json))
        elif req.method == "PATCH":
            lines.extend(describe("✎", req.json))
    return lines


def describe(mark: str, payload: dict) -> list[str]:
    """One message payload as transcript lines: text, embeds, attachments."""
    lines = []
    content = (payload.get("content") or "").strip()
    if content:
        first, *rest = content.splitlines()
        lines.append(f"  helix {mark} {first}")
        lines.extend(f"          {line}" for line in rest)
    for embed in payload.get("embeds") or []:
        lines.append(f"  helix {mark} [embed] {embed.get('title', '')} {embed.get('description', '')}".rstrip())
        for f in embed.get("fields") or []:
            lines.append(f"          {f.get('name')}: {f.get('value')}")
    for att in payload.get("attachments") or []:
        if isinstance(att, dict) and att.get("filename"):
            lines.append(f"  helix {mark} [attachment] {att['filename']}")
    buttons = _buttons(payload)
    if buttons:
        lines.append(f"  [buttons: {' · '.join(buttons)}]")
    return lines


def _buttons(payload: dict) -> list[str]:
    """The labels of a message's buttons, as ``click LABEL`` takes them: without them a player of
    ``python -m bot play`` cannot know what to click. A disabled one is marked, as Discord greys it."""
    shown = []
    for row in payload.get("components") or []:
        for item in (row.get("components") or []) if isinstance(row, dict) else []:
            if not isinstance(item, dict) or item.get("type") != 2:
                continue
            label = item.get("label") or (item.get("emoji") or {}).get("name") or "?"
            shown.append(f"{label} (disabled)" if item.get("disabled") else label)
    return shown


_MARKUP = re.compile(r"<(#|@!?|@&)(\d+)>|<t:(-?\d+)(?::[tTdDfFR])?>")


def as_seen(line: str, names: Mapping[int, str]) -> str:
    """A transcript line as a Discord client shows it: ``<#id>`` as ``#name``, ``<@id>`` as
    ``@name``, ``<t:…>`` as a UTC time; an id it has no name for stays as it is."""
    def shown(m: re.Match[str]) -> str:
        if m.group(3) is not None:
            return datetime.fromtimestamp(int(m.group(3)), UTC).strftime("%Y-%m-%d %H:%M UTC")
        name = names.get(int(m.group(2)))
        return m.group(0) if name is None else f"{'#' if m.group(1) == '#' else '@'}{name}"
    return _MARKUP.sub(shown, line)

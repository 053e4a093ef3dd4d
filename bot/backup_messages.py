"""What a backup's messages say: its progress, its end, and its line in ``!backup status``.

Pure text from a backup's row and live tally, shared by the backup cog (a cog module is executed
anew on each load, so shared code lives outside ``cogs/``). Where not everyone reading the message
may read the channel, it names neither the channel nor its counts nor its archive path; where not
everyone may open all the threads the backup took (``bot.backup_audience``), it names the channel
but shows no count nor error, which come from the threads as well.
"""

from __future__ import annotations

from bot.capture_checks import not_landed_yet
from bot.formatting import counted, human_size
from capture import Tally
from catalogue import BackupRow

UNNAMED = "a channel not everyone here can read"


def progress_text(row: BackupRow, tally: Tally, finished: bool, name: str, elapsed_s: float,
                  scanned_before: int = 0, backed_up_before: bool = False, upload: str = "landed",
                  hidden: bool = False, waits: str | None = None, threads_hidden: bool = False) -> str:
    """``scanned_before``: what a resumed backup had scanned when this process took it up (not in its rate);
    ``backed_up_before``: an earlier backup of the channel finished, so finding nothing new means up to date;
    ``upload``: whether its files reached the archive remote (``capture_checks.upload_state``), since a
    finished backup is in the catalogue, not yet on the remote, and "→ `path`" must not claim it is;
    ``hidden``: the message is read where not everyone can read the channel (see the module);
    ``waits``: why it has not started (the catalogue is being rebuilt), shown until it does;
    ``threads_hidden``: read where not everyone may open all the threads it took (see the module)."""
    if waits and tally.waiting and not finished:
        return f"⏳ The backup of {UNNAMED if hidden else name} waits: {waits}; it starts as soon as that is done."
    if hidden or threads_hidden:
        return unnamed_progress(row, finished, upload, None if hidden else name)
    # No rate in the first second: the first edit comes as the backup starts, and "0 msg/s" there
    # reads as a stalled backup.
    rate = f" · {(tally.scanned - scanned_before) / elapsed_s:,.0f} msg/s" if elapsed_s >= 1 else ""
    counts = (f"{counted(tally.scanned, 'message')} scanned, {tally.archived:,} new, {counted(tally.files, 'file')} "
              f"saved ({human_size(tally.bytes)})")
    notes = ""
    if tally.too_big:
        notes += f"; {counted(tally.too_big, 'file')} over HELIX_MAX_ATTACHMENT_MB recorded, not downloaded"
    if tally.missing:
        notes += f"; {counted(tally.missing, 'file')} already gone from Discord"
    if tally.failed:
        notes += f"; {counted(tally.failed, 'file')} Discord's CDN failed to send: the next backup tries them again"
    if tally.paused and not finished:
        notes += "; paused while the spool is full (HELIX_SPOOL_MAX_GB): it goes on as uploads free it"
    if not finished:
        return f"📦 Backing up {name}: {counts}{rate}{notes}."
    where = f"`discord/{row.guild_id}/{row.channel_id}/`"
    if row.state == "done" and backed_up_before and not (tally.archived or tally.files):
        # "0 messages scanned, 0 new" reads as an empty channel; it is one whose history is all archived.
        return f"✅ {name} is up to date: nothing new since the last backup."
    if row.state == "done" and upload != "landed":
        return f"✅ Backup of {name} done: {counts}{notes}, {not_landed_yet(upload)}."
    if row.state == "done":
        return f"✅ Backup of {name} done: {counts}{notes} → {where}."
    if row.state == "cancelled":
        return f"⏹️ Backup of {name} cancelled: {counts}; what was archived stays in {where}."
    return f"❌ Backup of {name} stopped: {row.error or 'unknown error'} ({counts})."


def unnamed_progress(row: BackupRow, finished: bool, upload: str = "landed", name: str | None = None) -> str:
    """A backup's message where not all its readers may read the channel: how it goes, never which
    channel, how much it holds or where it lands. ``name``: the channel, which they may all read,
    when only some of its threads are hidden from them (named, never counted)."""
    what = UNNAMED if name is None else f"{name} and its threads"
    if not finished:
        return f"📦 Backing up {what}…"
    if row.state == "done" and upload != "landed":
        return f"✅ The backup of {what} is done, {not_landed_yet(upload)}."
    ended = {"done": "✅ The backup of {} is done", "cancelled": "⏹️ The backup of {} was cancelled"}.get(
        row.state, "❌ The backup of {} stopped")
    readers = "that channel" if name is None else "all its threads"
    return f"{ended.format(what)}: `/backup status` shows how it went to whoever can read {readers}."


def paused_text(name: str, scanned: int, hidden: bool, threads_hidden: bool) -> str:
    """A running backup's message when a restart pauses it (``hidden``, ``threads_hidden``: as for
    ``progress_text``)."""
    if hidden or threads_hidden:
        paused = f"⏸️ The backup of {UNNAMED if hidden else f'{name} and its threads'} is paused by a restart"
    else:
        paused = f"⏸️ Backup of {name} paused by a restart at {counted(scanned, 'message')} scanned"
    return f"{paused}: it carries on from there when Helix is back."


def counts_left_out(slash: str) -> str:
    """What ``!backup status`` says when it kept some backups' counts that its asker may read."""
    return f"Counts of backups with threads not everyone here can read are left out: `{slash}` shows them to you alone."


def status_line(row: BackupRow, tally: Tally | None, threads_hidden: bool = False) -> str:
    """One backup for ``!backup status``: which channel, what kind, when it started, how far it got.

    A running backup's counts come from its live tally, as its progress message's do: its row is
    written once per page, so the two would disagree within a page. ``threads_hidden``: as for
    ``progress_text``, its counts and error are left out.
    """
    live = tally if tally is not None and row.state == "running" else row
    kind = "catch-up after !watch · " if row.kind == "catchup" else ""
    if threads_hidden:
        return (f"<#{row.channel_id}> and its threads · {kind}{row.state}, started <t:{int(row.started_at)}:R> · "
                "no counts: not all who read this may open all its threads")
    return (f"<#{row.channel_id}> · {kind}{row.state}, started <t:{int(row.started_at)}:R> · "
            f"{live.scanned:,} scanned, {live.archived:,} new, {counted(live.files, 'file')} "
            f"({human_size(live.bytes)})" + (f" · {row.error}" if row.error else ""))

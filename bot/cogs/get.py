"""``!get``: one archived message back, its text and its files, for a member who can read its channel.

Files within the upload limit (the server's, or ``HELIX_GET_UPLOAD_MB``) are fetched from the
remote into a temporary file under HELIX_DATA_DIR, streamed to Discord and deleted. Bigger ones
get a share link from the remote, shown only to the asker (ephemeral, or a DM for the prefix
form); where the backend has no links, one sentence says how an operator fetches the file. A
prefix command's answer is read by everyone in its channel: a message from a channel that not all
of them may read (``postable_in``) goes to the asker by DM instead, the channel told only that.
The text comes back whole, line breaks and formatting kept, mentions shown but pinging nobody; text
longer than a message can hold is attached as a file as well.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import shutil
from pathlib import Path

import discord
import structlog
from discord.ext import commands

from bot.cogs.find import archived_access, catalogue_of, shown, still_rebuilding, when
from bot.helix import HelixBot
from bot.replies import MESSAGE_CHARS, answer, archive_name, echo, outgoing, sees_internals
from bot.visibility import postable_in
from catalogue import ArchivedFile, ArchivedMessage
from catalogue.query import MAX_ID
from runtime.logs import redact
from runtime.units import human_size
from sync import SyncError, UnsupportedError

log = structlog.get_logger("helix.bot.get")
MESSAGE = commands.parameter(default="", displayed_default=None,
                             description="a message link, or an archived message id (find shows them)")
LINK = re.compile(r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+)/(\d+)/(\d+)")
ID = re.compile(r"^\s*(\d{15,20})\s*$")
COPIED_ID = re.compile(r"^\s*\d{15,20}-(\d{15,20})\s*$")  # Discord's Shift+Copy ID: channel-message
LINK_EXPIRY_S = 86_400.0
USAGE = "Give a message link or an archived message id: for example `{typed}1456074443980800027`."
ELSEWHERE = "That message link is from another server: I get back messages archived from this one only."
MESSAGE_FILES = 10  # Discord's limit of files in one message
NOT_HERE = "That message is from a channel not everyone here can read"


class Get(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="get", description="Get an archived message back, with its files")
    async def get(self, ctx: commands.Context, *, message: str = MESSAGE) -> None:
        """An archived message back (a message link or its archived id), files attached or linked."""
        slash = ctx.interaction is not None
        if ctx.guild is None:
            await self._say(ctx, f"`{'/get' if slash else '!get'}` works in a server, where I can check which "
                                 "channels you can read.")
            return
        found = LINK.search(message) or ID.match(message) or COPIED_ID.match(message)
        if not found:
            await self._say(ctx, USAGE.format(typed="/get message:" if slash else "!get "))
            return
        if found.re is LINK and int(found[1]) != ctx.guild.id:
            # The id alone would find this server's message of that id, if there were one: not the one linked.
            await self._say(ctx, ELSEWHERE)
            return
        message_id = int(found.groups()[-1])
        readable, threads = await archived_access(self.bot, ctx.author)
        archived = (await catalogue_of(self.bot).call("archived_message", message_id, readable)
                    if message_id <= MAX_ID else None)
        if archived is None:  # unknown, or in a channel the asker cannot read: the same answer
            rebuilding = still_rebuilding(self.bot)
            await self._say(ctx, f"I have no archived message `{message_id}` from a channel you can read"
                                 f"{f' yet: {rebuilding}; try again once it is done' if rebuilding else ''}.")
            return
        if ctx.interaction is not None:
            await ctx.defer(ephemeral=True)
        dm = ctx.interaction is None and not postable_in(ctx.channel, {archived.channel_id}, threads)
        await self._give(ctx, archived, dm=dm)

    async def _say(self, ctx: commands.Context, text: str) -> None:
        await answer(ctx, text, ephemeral=True) if ctx.interaction else await answer(ctx, text)

    def upload_limit(self, guild: discord.Guild) -> int:
        own = self.bot.settings.get_upload_mb * 1024 * 1024
        return min(guild.filesize_limit, own) if own else guild.filesize_limit

    async def _give(self, ctx: commands.Context, archived: ArchivedMessage, *, dm: bool) -> None:
        """Answer with the message and its files: in place, or by DM when ``dm`` (see the module)."""
        saved = [f for f in archived.files if f.blob]
        notes = [f"{name(f)} was {'too big to archive' if f.state == 'too_big' else 'not saved'}"
                 for f in archived.files if f.state in ("missing", "too_big")]
        limit, room = self.upload_limit(ctx.guild), self.upload_limit(ctx.guild)
        slots = MESSAGE_FILES - 1  # one kept for the text, should it not fit in the message
        small: list[ArchivedFile] = []
        big: list[ArchivedFile] = []
        for f in saved:
            fits = f.size <= room and len(small) < slots
            (small if fits else big).append(f)
            room -= f.size if fits else 0
        links, sentences = await self._links(ctx, big, limit)
        private = dm or ctx.interaction is not None  # only the asker reads the answer: links may go in it
        folder = Path(self.bot.archive.settings.data_dir) / "get" / secrets.token_hex(6)
        try:
            files = []
            for f in small:
                try:
                    files.append(await self._fetch(f, folder))
                except SyncError:  # the remote is down: the text and the other files still come back
                    notes.append(f"{name(f)} could not be fetched from the archive just now: try again later")
            below = [*(f"-# {n}." for n in notes), *sentences]
            apart = links if private else []  # links in messages of their own: never cut, nor cutting the text
            if apart and self._text(archived, _room([*below, *apart]))[1] is None and _room([*below, *apart]) > 0:
                below, apart = [*below, *apart], []
            text, whole = self._text(archived, _room(below))
            if whole is not None:
                files.insert(0, discord.File(io.BytesIO(whole.encode("utf-8")), filename=f"message-{archived.id}.txt"))
            body = "\n".join([text, *below])
            kwargs = {"suppress_embeds": True, **({"files": files} if files else {})}
            if not dm:
                await answer(ctx, body[:MESSAGE_CHARS], hints=False, **kwargs,
                             **({"ephemeral": True} if ctx.interaction else {}))
                for part in chunks(apart):
                    await answer(ctx, part, hints=False, suppress_embeds=True, ephemeral=True)
            elif await self._send_dm(ctx, body[:MESSAGE_CHARS], **kwargs) and \
                    all([await self._send_dm(ctx, part, suppress_embeds=True) for part in chunks(apart)]):
                await answer(ctx, f"{NOT_HERE}: I sent it to you in a direct message.")
            else:
                await answer(ctx, f"{NOT_HERE}, and I could not send it to you in a direct message: allow direct "
                                  "messages from this server, or use `/get`, whose answer only you see.")
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        if links and not private:
            await self._dm(ctx, archived, links)
        log.info("get", message_id=archived.id, attached=len(small), linked=len(links), dm=dm)

    def _text(self, archived: ArchivedMessage, room: int) -> tuple[str, str | None]:
        """The message as shown in ``room`` characters, and its whole text when that had to be
        shortened (to attach): the notes and links below it are never the part cut off. Both are
        redacted before they are quoted and cut, which would leave a secret the redaction misses."""
        who = shown(archived.author_name) or "unknown"
        head = f"**{who}** · {when(archived.created_at)} · <#{archived.channel_id}>"
        if archived.deleted and not archived.content:
            return f"{head}\n-# This message was deleted on Discord; only its tombstone is archived.", None
        if archived.deleted:  # HELIX_KEEP_DELETED: kept, and said, or it would pass for one still there
            head += "\n-# Deleted on Discord; the archive keeps deleted messages on this server."
        content = redact(archived.content)
        if not content.strip():
            return f"{head}\n> *(no text)*", None
        quoted = quote(content)
        if len(head) + 1 + len(quoted) <= room:
            return f"{head}\n{quoted}", None
        attached = f"…\n-# The whole text is attached as `message-{archived.id}.txt`."
        fits = max(room - len(head) - 1 - len(attached), 0)
        cut = closed(quoted[:max(fits - len(CLOSERS), 0)])
        return f"{head}\n{cut}{attached}", content

    async def _send_dm(self, ctx: commands.Context, body: str, **kwargs: object) -> bool:
        """A direct message is an answer too: the same steps (``outgoing``) as one in the channel."""
        try:
            await ctx.author.send(**outgoing(body, hints=False, **kwargs))
        except discord.HTTPException:
            return False
        return True

    async def _fetch(self, f: ArchivedFile, folder: Path) -> discord.File:
        # Not the file's own name on disk: Discord allows names longer than a filesystem does.
        dest = folder / str(f.id)
        await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
        try:
            await self.bot.archive.service.fetch(f.blob or "", dest)
        except SyncError as exc:
            log.warning("get_fetch_failed", blob=f.blob, error=exc.hint)
            raise
        return discord.File(dest, filename=Path(f.filename).name or "file")

    async def _links(self, ctx: commands.Context, big: list[ArchivedFile], limit: int) -> tuple[list[str], list[str]]:
        """Share links for files over the limit; or, where the backend has none, how an operator gets them."""
        links: list[str] = []
        sentences: list[str] = []
        svc = self.bot.archive.service
        for f in big:
            try:
                url = await svc.share_link(f.blob or "", expire_s=LINK_EXPIRY_S)
            except UnsupportedError as exc:
                # Over the limit alone, or only beside the files posted before it (or past ten files).
                why = (f"is over the {human_size(limit)} upload limit" if f.size > limit else
                       "does not fit in the same post as the others")
                if await sees_internals(ctx):  # the operator's way to it is for admins: members ask one
                    sentences.append(f"{name(f)} ({human_size(f.size)}) {why}. {exc.hint}")
                else:
                    sentences.append(f"{name(f)} ({human_size(f.size)}) {why} and {archive_name(svc)} offers no "
                                     "share links: ask an admin, who can fetch it from the archive for you.")
                continue
            links.append(f"{name(f)} ({human_size(f.size)}, link valid 24 h): <{url}>")
        return links, sentences

    async def _dm(self, ctx: commands.Context, archived: ArchivedMessage, links: list[str]) -> None:
        """A prefix command answers in the channel: links go to the asker alone, by DM."""
        sent = [await self._send_dm(ctx, part, suppress_embeds=True)
                for part in chunks([f"Files of the archived message `{archived.id}`:", *links])]
        if not all(sent):
            await answer(ctx, "Some files are too big to post here and I could not DM you their links: allow direct "
                              "messages from this server, or use `/get`.")
            return
        plural = len(links) != 1
        await answer(ctx, f"{len(links)} file{'s are' if plural else ' is'} too big to post here: I sent you "
                          f"the link{'s' if plural else ''} in a direct message.")


def _room(lines: list[str]) -> int:
    """What one message leaves for the text above ``lines``."""
    return MESSAGE_CHARS - sum(len(line) + 1 for line in lines)


def chunks(lines: list[str]) -> list[str]:
    """``lines`` in as few messages as hold them whole: a share link cut in two opens nothing."""
    out: list[str] = []
    for line in lines:
        if out and len(out[-1]) + 1 + len(line) <= MESSAGE_CHARS:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def name(f: ArchivedFile) -> str:
    """A file's name in a code span, as it is: no markdown escape shows there, no backtick ends it early."""
    return echo(f.filename, 100)


CLOSERS = "\n> ```\n> "  # the most a cut text needs to close: a code block (the "…" then on a line of its own)


def closed(cut: str) -> str:
    """A quoted text cut short, at a line's end where it can be, with what it left open closed: a
    spoiler cut in the middle would show the rest of its words to the whole channel, and an open
    code block would swallow the note below it."""
    if "\n" in cut:
        cut = cut.rsplit("\n", 1)[0]
    if cut.count("```") % 2:
        cut += "\n> ```\n> "
    elif cut.replace("\\|", "").count("||") % 2:
        cut += "||"
    return cut


def quote(text: str) -> str:
    """Archived text as a Discord quote, its formatting kept. Its mentions show as the names they
    were (the answer's allowed mentions ping nobody); only @everyone and @here are broken, which
    would otherwise light up as if the server had been called."""
    calm = re.sub(r"@(everyone|here)\b", "@\u200b\\1", text)
    return "\n".join(f"> {line}" for line in calm.split("\n"))


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Get(bot))

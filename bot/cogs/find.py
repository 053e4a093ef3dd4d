"""``!find`` and ``!archives``: what was archived, answered from the local catalogue, paged with buttons.

Only channels the asker can read right now (bot/visibility.py) are searched; that set is part of
the catalogue's SQL, so a page never holds, hints at or counts anything else. A prefix command's
answer is posted in a channel where others read it, so it narrows that set again to what may be
posted there (``postable_in``) and says that the slash form, which only the asker sees, covers the rest.
Archived text is shown redacted, then escaped (no markdown, no mention renders or pings), matches in bold.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import discord
import structlog
from discord.ext import commands

from bot.cogs.errors import example
from bot.formatting import counted, human_size
from bot.helix import HelixBot, UserFacingError
from bot.paging import Pager
from bot.replies import MESSAGE_CHARS, answer, echo, fitted, unmentioned
from bot.visibility import can_read, postable_in, readable_channel_ids
from bot.visibility import left_out as channels_left_out
from catalogue import HIT_END, HIT_START, Catalogue, ChannelSummary, SearchFilters, SearchHit, SearchPage
from catalogue.query import QueryError, SearchQuery, parse_query
from runtime.logs import redact, redact_excerpt

log = structlog.get_logger("helix.bot.find")
QUERY = commands.parameter(default="", displayed_default=None, description=(
    # Discord cuts a slash option's description at 100 characters.
    'words "a phrase" -word a OR b in:#channel from:@member has:file|image before:/after:/during:DATE'))
ONE_CHANNEL = commands.parameter(default=None,
                                 description="one channel, forum or thread, as #name (default: all you can read)")
Listable = discord.TextChannel | discord.ForumChannel | discord.Thread
RESULTS_PER_PAGE = 5
CHANNELS_PER_PAGE = 8
SNIPPET_CHARS = 300
AUTHOR_CHARS = 64
NO_TEXT = "*(no text)*"
NOT_FOR_ALL = "not everyone here can read"
IN_A_SERVER = "Search works in a server, where I can check which channels you can read: ask there with `!find`."
NOT_RUNNING = "Nothing is archived on this Helix: capture is not running, so there is nothing to search."
_SPACES = re.compile(r"\s+")
_EMPHASIS = re.compile(r"\*\*|__|~~")


def catalogue_of(bot: HelixBot) -> Catalogue:
    if bot.capture is None:
        raise UserFacingError(NOT_RUNNING)
    return bot.capture.catalogue


async def archived_access(bot: HelixBot, who: Any) -> tuple[set[int], dict[int, tuple[int, bool]]]:
    """The archived channels of the asker's server that the asker may read now (none in a DM), and
    each archived thread's channel and whether it is private: Discord no longer lists a quiet thread
    it archived, and the rules then follow its channel (``bot.visibility``)."""
    guild = getattr(who, "guild", None)
    if guild is None:
        return set(), {}
    cat = catalogue_of(bot)
    threads = await cat.call("thread_parents", guild.id)
    return readable_channel_ids(who, await cat.call("archived_channel_ids", guild.id), threads), threads


def shown(text: str, limit: int = SNIPPET_CHARS) -> str:
    """Archived text safe to show: one line, no secret, markdown and mentions escaped, matches in bold, at most
    ``limit`` characters as posted (escapes and mention marks count: a row of @names grows by half escaped).
    Bold, underline and strike markers are left out (shown escaped, they read as noise), and a spoiler stays
    a spoiler, closed where the snippet ends: a search answer must not give away what its author hid."""
    text = _EMPHASIS.sub("", _SPACES.sub(" ", redact(text))).strip()  # redacted first: an escaped secret is not one
    keep = len(text)
    while True:
        out = _escaped(text if keep >= len(text) else _cut(text, keep))
        if len(out) <= limit or keep == 0:
            return out if len(out) <= limit else ""
        keep = max(0, min(keep, len(text)) - max(1, len(out) - limit))


def _cut(text: str, keep: int) -> str:
    """The first ``keep`` characters and an ellipsis, a match cut in the middle still closed."""
    piece = text[:keep].rstrip()
    if piece.count(HIT_START) > piece.count(HIT_END):
        piece += HIT_END
    return piece + "…"


def _escaped(text: str) -> str:
    parts = text.split("||")
    out = []
    for i, part in enumerate(parts):
        part = discord.utils.escape_markdown(part).replace(HIT_START, "**").replace(HIT_END, "**").replace("****", "")
        out.append(f"||{part}||" if i % 2 and part.strip() else part)
    return unmentioned("".join(out))  # after the bold: ``@**everyone**`` must not render either


async def unsecret(cat: Catalogue, hit: SearchHit) -> str:
    """The snippet with no piece of a secret: it is cut (maybe inside a token) from the text, author or file names."""
    got = await cat.call("archived_message", hit.message_id, {hit.channel_id}) if "…" in hit.snippet else None
    whole = "\n".join([got.content, got.author_name, " ".join(f.filename for f in got.files)]) if got else None
    return redact_excerpt(hit.snippet, whole, marks=HIT_START + HIT_END)


def when(iso: str | None) -> str:
    """A Discord timestamp (shown in the reader's own time zone), or the raw text if it cannot be read."""
    if not iso:
        return "unknown time"
    try:
        return f"<t:{int(datetime.fromisoformat(iso.replace('Z', '+00:00')).timestamp())}:f>"
    except ValueError:
        return discord.utils.escape_markdown(iso[:32])


def still_rebuilding(bot: HelixBot) -> str | None:
    """The sentence that says results may be incomplete, while the catalogue is being rebuilt."""
    return getattr(bot.get_cog("Reindex"), "incomplete", None)


def filters_of(query: SearchQuery, guild: discord.Guild | None = None, asked: int | None = None) -> SearchFilters:
    """The catalogue's filters; ``from:name`` becomes the member's id when every name is a member of
    ``guild``; ``asked`` (the id of the asking message or interaction) leaves out what came since."""
    ids, names = set(query.author_ids), set(query.author_names)
    if guild is not None and names:
        found = {n: [m.id for m in guild.members if n in {m.name.lower(), m.display_name.lower()}] for n in names}
        if all(found.values()):
            ids |= {i for matches in found.values() for i in matches}
            names = set()
    return SearchFilters(query.match_expression(), frozenset(ids), frozenset(names), query.has, query.before,
                         query.after, asked)


def wanted_channels(guild: discord.Guild, query: SearchQuery, readable: set[int],
                    threads: Mapping[int, tuple[int, bool]]) -> set[int]:
    """``in:`` narrows what may be read (never widens it); channel names are matched case-insensitively.
    A channel named takes its threads along, those the asker may read: a forum's messages are all in
    its posts, and a thread is part of the conversation of its channel."""
    if not (query.channel_ids or query.channel_names):
        return readable
    wanted = set(query.channel_ids)
    for channel_id in readable:
        channel = guild.get_channel_or_thread(channel_id)
        if channel is not None and channel.name.lower() in query.channel_names:
            wanted.add(channel_id)
    return with_threads(wanted, readable, threads)


def with_threads(channel_ids: set[int], readable: set[int], threads: Mapping[int, tuple[int, bool]]) -> set[int]:
    """``channel_ids`` and their threads (or forum posts; ``threads`` as ``archived_access`` gives them), only
    those in ``readable``: a thread the asker may not read never comes along with its channel."""
    taken = {channel_id for channel_id in readable if threads.get(channel_id, (None,))[0] in channel_ids}
    return (channel_ids | taken) & readable


class Find(commands.Cog):
    def __init__(self, bot: HelixBot) -> None:
        self.bot = bot

    # -- !find ------------------------------------------------------------------------------------

    @commands.hybrid_command(name="find", description="Search what was archived from the channels you can read")
    async def find(self, ctx: commands.Context, *, query: str = QUERY) -> None:
        """Search the archive: words, "a phrase", -word to leave out, a OR b, in:#channel, from:@member,
        has:file or has:image, before:/after:/during:YYYY-MM-DD (after: and before: leave the day itself out)."""
        typed = "/find query:" if ctx.interaction is not None else "!find "
        if ctx.guild is None:
            await self._say(ctx, IN_A_SERVER.replace("`!find`", f"`{typed.split()[0]}`"))
            return
        try:
            parsed = parse_query(query)
        except QueryError as exc:
            await self._say(ctx, exc.sentence(typed))
            return
        if parsed.empty and parsed.dropped:
            await self._say(ctx, f"I can't search for {echo(' '.join(parsed.dropped))}: emoji and other symbols on "
                                 "their own are not searchable, only words. Add a word from the message, or look by "
                                 f"who posted it and when: for example `{typed}from:@alice during:2026-01-31`.")
            return
        if parsed.empty:
            await self._say(ctx, f"Tell me what to look for: for example `{typed}launch in:#general from:@alice`.")
            return
        cat = catalogue_of(self.bot)
        filters = filters_of(parsed, ctx.guild, (ctx.interaction or ctx.message).id)
        guild = ctx.guild
        said = echo(query, 60)

        async def searched(who: Any) -> tuple[set[int], set[int], Mapping[int, tuple[int, bool]]]:
            """The channels to search, those only the slash form would, the threads not deleted; every page."""
            readable, threads = await archived_access(self.bot, who)
            channels = wanted_channels(guild, parsed, readable, threads)
            if ctx.interaction is not None:
                return channels, set(), threads
            postable = postable_in(ctx.channel, channels, threads)  # posted in the channel: what all its readers see
            return postable, channels - postable, threads

        async def render(page: int, who: Any) -> tuple[str, bool]:
            channels, private, threads = await searched(who)
            found = await cat.call("find", channels, filters, offset=page * RESULTS_PER_PAGE, limit=RESULTS_PER_PAGE)
            found = replace(found, hits=tuple([replace(h, snippet=await unsecret(cat, h)) for h in found.hits]))
            # Said whenever the asker reads channels left out here, never whether they match: the
            # channel reads this answer, and a match is itself something of what they hold.
            left_out = [f"channels {NOT_FOR_ALL} are left out: `/find` searches them for you alone"] if private else []
            # A thread Discord archived for being quiet is out of discord.py's cache, not deleted.
            live = {h.channel_id for h in found.hits
                    if h.channel_id in threads or guild.get_channel_or_thread(h.channel_id)}
            links = {h.message_id: await self._jump(guild.id, h.channel_id, h.message_id) for h in found.hits
                     if h.channel_id in live}
            return results_page(said, page, found, links, live=live.__contains__, notes=[*parsed.notes, *left_out],
                                rebuilding=still_rebuilding(self.bot),
                                scope="everyone here can read" if private else "you can read"), found.more

        log.info("find", terms=len(parsed.terms))
        await Pager(ctx.author.id, render).send(ctx, ephemeral=True)

    async def _jump(self, guild_id: int, channel_id: int, message_id: int) -> str | None:
        """The message's link when it still exists on Discord (cache first, then one look)."""
        cached = discord.utils.get(self.bot.cached_messages, id=message_id)
        if cached is not None:
            return cached.jump_url
        channel = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)  # a quiet thread too
        with contextlib.suppress(discord.NotFound, discord.Forbidden):
            return (await channel.fetch_message(message_id)).jump_url
        return None

    # -- !archives --------------------------------------------------------------------------------

    @commands.hybrid_command(name="archives", description="What is archived from the channels you can read",
                             ignore_extra=False,  # a second channel is not silently dropped
                             extras={"example": "!archives #general", "example_slash": "/archives channel:#general",
                                     "channel": "a channel, forum or thread of this server"})
    async def archives(self, ctx: commands.Context, channel: Listable = ONE_CHANNEL) -> None:
        """Per channel: messages, files, bytes, first and last date, last backup, watched or not; threads and
        forum posts under their channel."""
        if ctx.guild is None:
            await self._say(ctx, IN_A_SERVER.replace("`!find`", "`/archives`" if ctx.interaction else "`!archives`"))
            return
        if channel is not None and not can_read(ctx.author, channel):
            # The converter finds any channel of the server by the name typed: answered as a channel
            # that does not exist, or guessing names would tell a member which hidden ones do.
            raise UserFacingError(f"`channel` must be {ctx.command.extras['channel']}: for example `{example(ctx)}`.")
        cat = catalogue_of(self.bot)

        async def render(page: int, who: Any) -> tuple[str, bool]:
            readable, threads = await archived_access(self.bot, who)
            if channel is not None:  # with its threads: a forum's posts are where its messages are
                readable = with_threads({channel.id}, readable, threads)
            hidden = 0
            if ctx.interaction is None:  # posted in the channel: only what all its readers may see
                postable = postable_in(ctx.channel, readable, threads)
                # One named that not all its readers may see is said so whether or not it is archived.
                named = channel is not None and not postable_in(ctx.channel, {channel.id}, threads)
                readable, hidden = postable, len(readable - postable) or int(named)
            left_out = channels_left_out("/archives")
            rows, more = await cat.call("channel_summaries", readable, offset=page * CHANNELS_PER_PAGE,
                                        limit=CHANNELS_PER_PAGE)
            rebuilding = still_rebuilding(self.bot)
            if not rows:
                if page == 0:
                    if channel is not None and not can_read(who, channel):
                        return f"Nothing archived that you can read is from <#{channel.id}>.", False
                    if hidden and channel is not None:
                        return (f"<#{channel.id}> is not for everyone here, so its archive is not shown here: "
                                "`/archives` with it as `channel` shows it to you alone."), False
                    if hidden:
                        return f"Nothing archived that everyone here can read. {left_out}.", False
                    where = f"from <#{channel.id}>" if channel is not None else "from a channel you can read"
                    return f"Nothing is archived {where} yet{f': {rebuilding}' if rebuilding else ''}.", False
                return "No more archived channels.", False
            lines = [f"Archived channels (page {page + 1}):", *(summary_line(r) for r in rows)]
            notes = [*([f"-# {left_out}."] if hidden else []),
                     *([f"-# Counts may be low: {rebuilding}."] if rebuilding else [])]
            return "\n".join([*lines, *notes]), more

        await Pager(ctx.author.id, render).send(ctx, ephemeral=True)

    async def _say(self, ctx: commands.Context, text: str) -> None:
        await answer(ctx, text, ephemeral=True) if ctx.interaction else await answer(ctx, text)


def results_page(said: str, page: int, found: SearchPage, links: Mapping[int, str | None], *,
                 live: Callable[[int], bool], notes: Sequence[str] = (), rebuilding: str | None = None,
                 scope: str = "you can read") -> str:
    """One page of results as the asker reads it (pure: the benchmark times it with the query);
    ``scope``: whose reading the search was limited to, as the empty answer says it. It fits in one
    Discord message whatever was archived: the snippets share what the rest of the page leaves."""
    if not found.hits:
        if page == 0:
            empty = (f"Nothing archived that {scope} matches {said} yet: {rebuilding}; try again once it is "
                     "done." if rebuilding else f"Nothing archived that {scope} matches {said}.")
            return fitted("\n".join([empty, *([f"-# {'; '.join(notes)}."] if notes else [])]))
        return f"No more results for {said}."
    notes = [*notes, rebuilding] if rebuilding else notes
    blocks = []
    for hit in found.hits:
        where = f"<#{hit.channel_id}>" if live(hit.channel_id) else "a deleted channel"
        files = f" · {counted(hit.files, 'file')}" if hit.files else ""
        head = f"**{shown(hit.author_name, AUTHOR_CHARS) or 'unknown'}** · {when(hit.created_at)} · {where}{files}"
        link = links.get(hit.message_id)
        tail = [*([f"<{link}>"] if link else []), f"-# archived id `{hit.message_id}`"]
        blocks.append((head, hit.snippet, tail))
    top = f"Archived messages matching {said} (page {page + 1}):"
    bottom = [f"-# {'; '.join(notes)}."] if notes else []

    def page_with(snippets: Sequence[str]) -> str:
        lines = [top]
        for (head, _, tail), snippet in zip(blocks, snippets, strict=True):
            lines += [head, f"> {snippet}", *tail]
        return "\n".join([*lines, *bottom])

    whole = [shown(snippet) or NO_TEXT for _, snippet, _ in blocks]
    room = MESSAGE_CHARS - len(page_with([""] * len(blocks)))
    caps = shares([len(s) for s in whole], room)
    return fitted(page_with([s if len(s) <= cap else shown(snippet, cap) or "…"
                             for s, cap, (_, snippet, _) in zip(whole, caps, blocks, strict=True)]))


def shares(lengths: Sequence[int], room: int) -> list[int]:
    """How many characters each snippet may have: all of its own where it is short, an even share of
    what the short ones left where it is long."""
    caps = [0] * len(lengths)
    for done, i in enumerate(sorted(range(len(lengths)), key=lengths.__getitem__)):
        caps[i] = max(0, min(lengths[i], room // (len(lengths) - done)))
        room -= caps[i]
    return caps


def summary_line(row: ChannelSummary) -> str:
    """One channel of ``!archives``. A thread listed after its channel says whose it is (``↳``); a forum's
    counts are its posts' (listed after it), since a forum holds no message of its own."""
    span = f"{(row.first_at or '')[:10]} → {(row.last_at or '')[:10]}" if row.messages else "no messages"
    # Messages a watch or a cancelled backup archived are there all the same: "never" would read as empty.
    backup = f"last backup <t:{int(row.last_backup_at)}:R>" if row.last_backup_at else "no backup finished yet"
    if row.parent_id is not None:
        where = f"↳ in <#{row.parent_id}> · "
    elif row.type == "forum":
        where = f"forum: {counted(row.threads, 'post')}, listed after it · "
    else:
        where = ""
    return (f"<#{row.channel_id}> · {where}{counted(row.messages, 'message')} · {counted(row.files, 'file')} "
            f"({human_size(row.bytes)}) · {span} · "
            f"{backup} · {'watched' if row.watched else 'not watched'}")


async def setup(bot: HelixBot) -> None:
    await bot.add_cog(Find(bot))

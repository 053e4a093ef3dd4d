"""A simulated Discord guild (SimCord) with the real Helix bot in it: the world behind demo and play.

SimCord runs discord.py's real parsers, cache and command framework against an in-memory Discord,
so what happens here is what would happen on Discord, minus the network and the token. The
archive (rclone, outbox, worker) is started here, outside the bot, and handed to it: tasks
started inside a simulated bot must settle, and a supervisor of rclone never does.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import discord
import simcord
from discord import app_commands

from bot.helix import HelixBot
from bot.settings import Settings
from bot.sim.transcript import transcript_lines
from capture import Capture
from sync import Archive

_CHANNEL_NAME = re.compile(r"(?<![<\w])#([\w-]+)")


@dataclass
class World:
    env: Any
    bot: HelixBot
    archive: Archive
    guild: Any
    channel: Any
    owner: Any
    users: dict[str, Any] = field(default_factory=dict)
    _seen_requests: int = 0
    capture: Capture | None = None

    def member(self, name: str, *, admin: bool = False) -> Any:
        """The member called ``name`` (created on first use); ``admin``: one with the Helix Admins
        role (given now to a member who had it not)."""
        admins = self.guild.roles["Helix Admins"]
        if name not in self.users:
            self.users[name] = self.guild.add_member(self.env.create_user(name), roles=[admins] if admin else [])
        elif admin:
            self.env.backend.add_member_role(self.guild.id, self.users[name].id, admins.id)
        return self.users[name]

    async def click(self, who: Any, label: str) -> list[str]:
        """``who`` presses the button labelled ``label`` on the newest message that has one."""
        start = len(self.env.http_requests)
        for message in reversed(self.channel.history()):
            labels = {getattr(c, "label", None) for row in message.components for c in getattr(row, "children", [])}
            if label in labels:
                await who.click(message, label=label)
                return self.render(start)
        raise ValueError(f"no message here has a button labelled {label!r}")

    async def say(self, who: Any, text: str) -> list[str]:
        """``who`` types ``text``: a message, or a slash command when it starts with '/'."""
        start = len(self.env.http_requests)
        if text.startswith("/"):
            if not text[1:].split():
                raise ValueError("type a command name after the /, for example /ritual steps:7")
            name, declared, args = self._command(text[1:].split())
            options: dict[str, Any] = {}
            for arg in args:
                key, _, value = arg.partition(":")
                options[key] = self._option(declared, key, value)
            await who.slash(self.channel, name, **options)
        else:
            await who.send(self.channel, self._as_sent(text))
        return self.render(start)

    def _as_sent(self, text: str) -> str:
        """``#name`` of a channel becomes its mention, as Discord's client sends it."""
        channels = self.guild.channels
        return _CHANNEL_NAME.sub(lambda m: f"<#{channels[m[1]].id}>" if m[1] in channels else m[0], text)

    def _command(self, words: list[str]) -> tuple[str, Any, list[str]]:
        """The command typed, as Discord's client picks it: ``/backup status`` is the group's
        subcommand ``status``, not ``/backup`` with a stray word. (Its full name, the command, the
        options' words.)"""
        path, rest = [words[0]], words[1:]
        declared = self.bot.tree.get_command(words[0])
        while isinstance(declared, app_commands.Group) and rest and ":" not in rest[0]:
            sub = declared.get_command(rest[0])
            if sub is None:
                break
            declared, rest = sub, rest[1:]
            path.append(sub.name)
        return " ".join(path), declared, rest

    def _channel_named(self, value: str) -> Any:
        """``#launch``, ``launch`` or ``<#id>``, typed where Discord's client offers a channel picker:
        the channel itself, as the picker sends it (a thread too)."""
        key = value.strip().removeprefix("<").removesuffix(">").lstrip("#")
        channels = list(self.guild.channels.values())
        channels += [t for c in channels for t in c.threads]
        for channel in channels:
            if key in (channel.name, str(channel.id)):
                return channel
        raise ValueError(f"no channel #{key} here")

    def _option(self, declared: Any, key: str, value: str) -> Any:
        """A typed option as Discord sends it: a number only where the command declares one (an
        archived id is text to ``/get``, however many digits it has), a channel where it takes one."""
        param = declared.get_parameter(key) if isinstance(declared, app_commands.Command) else None
        numeric = value.lstrip("-").isdigit()
        if param is None:
            return int(value) if numeric else value
        if param.type is discord.AppCommandOptionType.channel:
            return self._channel_named(value)
        if param.type is discord.AppCommandOptionType.integer and numeric:
            return int(value)
        if param.type is discord.AppCommandOptionType.number:
            try:
                return float(value)
            except ValueError:
                return value
        return value

    def names(self) -> dict[int, str]:
        """Channels, members and roles by id, as a Discord client names them (``as_seen``)."""
        guild = self.bot.get_guild(self.guild.id)
        named: list[Any] = [*guild.channels, *guild.members, *guild.roles] if guild is not None else []
        return {x.id: getattr(x, "display_name", x.name) for x in named}

    def render(self, start: int | None = None) -> list[str]:
        """What the bot did since request ``start`` (default: since the last render), in order."""
        requests = self.env.http_requests
        start = self._seen_requests if start is None else start
        self._seen_requests = len(requests)
        return transcript_lines(requests[start:])


@contextlib.asynccontextmanager
async def simulated_guild(settings: Settings, **simcord_options: Any) -> AsyncIterator[World]:
    """Start the archive, put HelixBot in a SimCord guild with an owner and an admin role, sync slash commands."""
    archive = Archive(settings.sync, stop_grace_s=settings.stop_grace_s)
    capture = Capture(settings.capture, archive)
    bot = HelixBot(settings, archive, capture=capture)  # subscribes to the worker before the worker starts
    await archive.start()
    try:
        await capture.start()
    except BaseException:
        await archive.close()
        raise
    try:
        simcord_options.setdefault("settle_timeout", 60.0)
        async with simcord.run(bot, **simcord_options) as env:
            guild = env.create_guild(name="Helix demo")
            channel = guild.create_text_channel("archive")
            admins = guild.create_role("Helix Admins")
            owner_user = env.create_user("owner")
            owner = guild.add_member(owner_user, roles=[admins])
            bot.owner_ids = {owner.id}
            bot.settings = replace(bot.settings, admin_role_ids=frozenset({admins.id}),
                                   guild_id=guild.id)
            world = World(env=env, bot=bot, archive=archive, guild=guild, channel=channel, owner=owner,
                          capture=capture)
            world.render()
            yield world
    finally:
        try:
            await capture.close()
        finally:
            await archive.close()

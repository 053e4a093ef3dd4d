"""A Prev/Next pager for answers longer than one message, turned only by the member who asked.

Each page is rendered on demand by the caller's ``render(page, who)`` (so a page of search results
is one catalogue query, cut inside the SQL, never a filtered slice of an earlier answer), with the
asker as Discord describes them at that moment: the command's author, then whoever pressed the
button, whose roles come with the press, so access taken away meanwhile is away from the next page. Someone
else pressing a button gets one ephemeral sentence and the page stays as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord.ext import commands

from bot.replies import answer, fitted, outgoing, prefix_of

PAGER_TIMEOUT_S = 600.0
NOT_YOURS = "Only the member who asked can turn these pages: ask your own question to get your own."
# render(page, the asker now) -> (text of that page, whether a next page exists)
Render = Callable[[int, Any], Awaitable[tuple[str, bool]]]


class Pager(discord.ui.View):
    def __init__(self, asker_id: int, render: Render, *, timeout: float = PAGER_TIMEOUT_S) -> None:
        super().__init__(timeout=timeout)
        self.asker_id = asker_id
        self.render = render
        self.page = 0
        self.message: discord.Message | None = None
        # The last press: an ephemeral answer can be edited only through an interaction, for 15 minutes
        # after it, and every press gives the pager another PAGER_TIMEOUT_S.
        self._pressed: discord.Interaction | None = None

    async def first_page(self, who: Any) -> tuple[str, bool]:
        text, more = await self.render(0, who)
        self._arrange(more)
        return fitted(text), more

    async def send(self, ctx: commands.Context, *, ephemeral: bool = False) -> discord.Message | None:
        """Answer ``ctx`` with the first page; buttons only when there is more than one."""
        text, more = await self.first_page(ctx.author)
        # Archived text may hold links: no preview of them (they are quoted, not posted anew).
        kwargs: dict[str, Any] = {"suppress_embeds": True, **({"ephemeral": ephemeral} if ctx.interaction else {})}
        if not more:
            self.stop()
            return await answer(ctx, text, **kwargs)
        self.message = await answer(ctx, text, view=self, **kwargs)
        return self.message

    def _arrange(self, more: bool) -> None:
        self.previous.disabled = self.page == 0
        self.next.disabled = not more

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.asker_id:
            return True
        await interaction.response.send_message(**outgoing(NOT_YOURS, ephemeral=True))
        return False

    async def _turn(self, interaction: discord.Interaction, step: int) -> None:
        self.page = max(0, self.page + step)
        self._pressed = interaction
        text, more = await self.render(self.page, interaction.user)
        self._arrange(more)
        await interaction.response.edit_message(**outgoing(text, prefix=prefix_of(interaction.client), view=self))

    @discord.ui.button(label="Prev", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        await self._turn(interaction, -1)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.primary)
    async def next(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        await self._turn(interaction, +1)

    async def on_timeout(self) -> None:
        """Grey the buttons out, so nobody presses a pager that no longer answers."""
        if self.message is None:
            return
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        with contextlib.suppress(discord.HTTPException):
            if self._pressed is not None:
                await self._pressed.edit_original_response(view=self)
            else:
                await self.message.edit(view=self)

"""A server with something archived: a public and a private channel backed up by the real ``!backup``.

Members: ``alice`` is staff (reads the private channel), ``bob`` is not. Messages are spread over
days on SimCord's virtual clock, so date filters have something to cut.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from bot.sim.world import World
from tests.support.capture import backup_finished
from tests.support.cdn import LocalCdn
from tests.support.world import private_channel

DAY_S = 86_400


def _png() -> bytes:
    """A real picture (a browser must be able to draw it), small enough to post back."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (88, 101, 242)).save(out, format="PNG")
    return out.getvalue()


PHOTO = _png()


@dataclass
class Archived:
    world: World
    general: Any
    secret: Any
    staff: Any
    alice: Any
    bob: Any
    ids: dict[str, int]


async def archived_server(world: World, cdn: LocalCdn, *, extra: int = 0) -> Archived:
    env, be, guild = world.env, world.env.backend, world.guild
    staff = guild.create_role("Staff")
    general = guild.create_text_channel("general")
    secret = private_channel(world, "secret", staff, world.owner)  # the owner backs it up: must read it
    alice = guild.add_member(env.create_user("alice"), roles=[staff])
    bob = guild.add_member(env.create_user("bob"))
    world.users.update(alice=alice, bob=bob)
    ids: dict[str, int] = {}

    def post(key: str, channel: Any, who: Any, text: str, files: list[dict[str, Any]] | None = None) -> None:
        ids[key] = be.create_message(channel.id, who.id, text, attachments=files or [], broadcast=False).id

    post("launch", general, alice, "The rocket launch is on Friday, bring snacks")
    post("lunch", general, bob, f"lunch at noon? @everyone <@{alice.id}>")
    await env.advance_time(2 * DAY_S)
    post("photo", general, alice, "photo of the launch pad",
         [cdn.attachment(env, general.id, "pad.png", PHOTO, "image/png")])
    post("code", secret, alice, "the launch code is 4242, keep it secret")
    await env.advance_time(2 * DAY_S)
    post("minutes", general, bob, "minutes from the *launch* review",
         [cdn.attachment(env, general.id, "minutes.txt", b"minutes\n" * 100, "text/plain")])
    for i in range(extra):
        post(f"extra{i}", general, bob, f"status report number {i} about the launch")
    await env.settle()
    for channel in (general, secret):
        await world.say(world.owner, f"!backup <#{channel.id}>")
        row = await backup_finished(world, channel.id)
        assert row.state == "done", row
    return Archived(world, general, secret, staff, alice, bob, ids)

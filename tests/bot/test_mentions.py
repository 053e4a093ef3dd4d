"""Whatever a member types, the bot's answer can ping nobody but that member: never @everyone,
@here, a role, or another user named in the input (hypothesis, through the real bot in SimCord).

A message pings what its content mentions *and* its ``allowed_mentions`` permits (no
``allowed_mentions`` at all means Discord's default: everything). Both are read from the HTTP
requests the bot sent, so the check is Discord's rule, not Helix's intention.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.settings import Settings
from bot.sim import transcript
from bot.sim.world import World, simulated_guild
from sync.settings import SyncSettings

T = TypeVar("T")
USER = re.compile(r"<@!?(\d+)>")
ROLE = re.compile(r"<@&(\d+)>")


@dataclass
class Guild:
    runner: asyncio.Runner
    world: World
    victim: Any
    role: Any

    def run(self, coro: Awaitable[T]) -> T:
        return self.runner.run(asyncio.wait_for(coro, 120))


@pytest.fixture(scope="module")
def guild(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guild]:
    root = tmp_path_factory.mktemp("mentions")
    bot_settings = Settings(health=False, heartbeat_minutes=0, ritual_cooldown_s=0, stop_grace_s=2,
                            sync=SyncSettings(data_dir=root, retries=0, outbox_retry_base_s=0.1))
    runner = asyncio.Runner()
    state: dict[str, Any] = {}

    async def host() -> None:
        async with simulated_guild(bot_settings, check_errors=False) as world:
            state["ready"].set_result(world)
            await state["finished"].wait()

    async def start() -> World:
        state["ready"], state["finished"] = asyncio.get_running_loop().create_future(), asyncio.Event()
        state["task"] = asyncio.create_task(host())
        return await asyncio.wait_for(asyncio.shield(state["ready"]), 60)

    world = runner.run(start())
    victim = world.member("victim")
    role = world.guild.create_role("Everyone Important")
    try:
        yield Guild(runner, world, victim, role)
    finally:
        async def stop() -> None:
            state["finished"].set()
            await state["task"]

        runner.run(stop())
        runner.close()


def pinged(payload: dict[str, Any]) -> tuple[set[int], set[int], bool]:
    """(users, roles, everyone) this message pings, by Discord's rules for content and allowed_mentions."""
    allowed = payload.get("allowed_mentions")
    parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse") or [])
    explicit_users = {int(u) for u in (allowed or {}).get("users") or []}
    explicit_roles = {int(r) for r in (allowed or {}).get("roles") or []}
    content = payload.get("content") or ""
    users = {int(u) for u in USER.findall(content) if "users" in parse or int(u) in explicit_users}
    roles = {int(r) for r in ROLE.findall(content) if "roles" in parse or int(r) in explicit_roles}
    everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
    return users, roles, everyone


def hostile_fragments(g: Guild) -> st.SearchStrategy[str]:
    return st.sampled_from([
        "`", "``", "```", f"<@{g.victim.id}>", f"<@!{g.victim.id}>", f"<@&{g.role.id}>", "@everyone", "@here",
        "**", "_", "\\", " ", "x", "ritual", "outbox", "retry", "drop", "status", "help", "#", "|", "~~",
    ])


MENTIONS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@MENTIONS
@given(data=st.data())
@example(data=None)
def test_no_reply_pings_anyone_but_its_author(guild: Guild, data: st.DataObject | None) -> None:
    world = guild.world
    if data is None:  # the input of the report: a backtick closes the echoed code span
        who, text = world.member("mallory"), f"!x`<@{guild.victim.id}>` @everyone <@&{guild.role.id}>"
    else:
        parts = data.draw(st.lists(st.one_of(hostile_fragments(guild), st.text(max_size=8)), max_size=8))
        command = data.draw(st.sampled_from(["!", "!x", "!ritual ", "!outbox retry ", "!outbox drop ", "!help ",
                                             "!status ", "!outbox "]))
        who = data.draw(st.sampled_from([world.member("mallory"), world.owner]))
        text = command + "".join(parts)
    since = len(world.env.http_requests)
    guild.run(world.say(who, text))
    for payload in transcript.bot_messages(world.env.http_requests[since:]):
        users, roles, everyone = pinged(payload)
        assert users <= {who.id}, f"{text!r}: the answer pings {users} ({payload.get('content')!r})"
        assert not roles, f"{text!r}: the answer pings roles {roles}"
        assert not everyone, f"{text!r}: the answer pings @everyone/@here"
        allowed = payload.get("allowed_mentions")
        assert allowed is not None and not {"everyone", "roles"} & set(allowed.get("parse") or []), allowed

"""How ``!ritual`` and ``!help`` read: one step is "1 step", and a default is stated once."""

from __future__ import annotations

from bot.sim.world import World
from tests.support.world import answers


async def test_a_ritual_of_one_step_is_named_in_the_singular(local_world: World) -> None:
    world = local_world
    for who, text in (("alice", "!ritual 1"), ("bob", "/ritual steps:1"), ("carol", "!ritual 2")):
        since = len(world.env.http_requests)
        await world.say(world.member(who), text)
        [posted] = answers(world, since)
        steps = "1 step" if text.endswith("1") else "2 steps"
        assert posted["content"].startswith(f"🌀 **Ritual of {steps}** · "), (text, posted["content"])


async def test_help_states_each_default_once(local_world: World) -> None:
    world = local_world
    helped = "\n".join(await world.say(world.owner, "!help ritual"))
    assert "steps" in helped and helped.count("default") == 1 and "(default 108)" in helped, helped
    for command in world.bot.walk_commands():
        lines = await world.say(world.owner, f"!help {command.qualified_name}")
        twice = [line for line in lines if line.count("(default") > 1]
        assert not twice, (command.qualified_name, twice)


async def test_help_shows_the_line_to_type_for_a_subcommand_too(local_world: World) -> None:
    world = local_world
    for command, usage in (("backup status", "!backup status"), ("backup", "!backup <channel> [threads]"),
                           ("outbox retry", "!outbox retry <id|all>"), ("ritual", "!ritual [steps]")):
        lines = [line.strip() for line in await world.say(world.owner, f"!help {command}")]
        assert any(line.endswith(usage) for line in lines), (command, lines)

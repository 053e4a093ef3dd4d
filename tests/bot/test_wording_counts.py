"""What a member reads when a count is one, a remote's type is not known, or an answer has buttons:
each typed in a simulated guild, as a user would."""

from __future__ import annotations

from bot.sim.world import World
from tests.support.archived import archived_server
from tests.support.waiting import wait_until
from tests.support.world import answers


async def said(world: World, who, text: str) -> str:
    since = len(world.env.http_requests)
    await world.say(who, text)
    return "\n".join(m.get("content") or "" for m in answers(world, since))


async def test_the_outbox_says_1_try_not_1_tries(nosuch_world: World) -> None:
    world = nosuch_world
    await world.say(world.member("alice"), "!ritual 3")

    async def failed() -> bool:
        return (await world.archive.outbox.counts()).failed > 0
    await wait_until(failed, what="a failed upload")
    shown = await said(world, world.owner, "!outbox")
    assert "failed ·" in shown and "· 1 try" in shown and "1 tries" not in shown, shown


async def test_status_leaves_out_a_backend_type_it_does_not_know(nosuch_world: World) -> None:
    world = nosuch_world
    since = len(world.env.http_requests)
    await world.say(world.owner, "!status")
    [reply] = answers(world, since)
    fields = {f["name"]: f["value"] for f in reply["embeds"][0]["fields"]}
    assert fields["Archive remote"] == "`nosuch:x`", fields


async def test_find_pages_show_their_buttons_and_which_are_disabled(local_world: World, cdn) -> None:
    world = local_world
    a = await archived_server(world, cdn, extra=12)
    first = await world.say(a.bob, "!find launch")
    assert "  [buttons: Prev (disabled) · Next]" in first, first
    turned = await world.click(a.bob, "Next")
    assert "  [buttons: Prev · Next]" in turned, turned

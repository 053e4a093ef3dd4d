"""What a member sees and what an admin sees: the remote by its name and a plain state for members,
variables, paths and disk usage only for admins (and the log). Also ``!outbox``'s listing and
subcommands, and ``!ritual``'s argument: ASCII digits, a range Discord itself enforces, one hint style.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from simcord.backend.errors import OptionError

from bot.sim.world import World
from tests.support.waiting import wait_until
from tests.support.world import COOLDOWN_S, answers, bot_messages, drained

OPERATOR_WORDS = ("RCLONE_CONFIG", "rclone.conf", "HELIX_", "RCLONE_")


def everything(world: World, since: int = 0) -> str:
    return repr(bot_messages(world, since))


async def said(world: World, who, text: str) -> str:
    since = len(world.env.http_requests)
    await world.say(who, text)
    assert world.env.errors is not None  # refusals are expected here: reading them tells SimCord so
    return everything(world, since)


def fields(embed: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


async def status_embed(world: World, who) -> dict[str, str]:
    since = len(world.env.http_requests)
    await world.say(who, "!status")
    [reply] = answers(world, since)
    return fields(reply["embeds"][0])


# -- item 10: operator internals only for admins ---------------------------------------------------


async def test_status_shows_members_the_archive_by_name_and_admins_its_path_and_space(
        local_world: World, data_dir: Path) -> None:
    world = local_world
    member = await status_embed(world, world.member("alice"))
    assert member["Archive remote"] == "the local archive", member
    assert "Space" not in member and str(data_dir) not in repr(member), member

    admin = await status_embed(world, world.owner)
    assert str(data_dir.resolve()) in admin["Archive remote"], admin
    assert "free" in admin["Space"], admin


async def test_a_ritual_tells_everyone_where_it_landed_without_a_local_path(local_world: World, data_dir: Path) -> None:
    world = local_world
    since = len(world.env.http_requests)
    await world.say(world.member("alice"), "!ritual 3")
    await drained(world)
    shown = everything(world, since)
    assert "archived to" in shown and "the local archive" in shown, shown
    assert str(data_dir.resolve()) not in shown and "/tmp" not in shown, shown


async def test_members_are_not_told_the_operators_fix_and_admins_are(nosuch_world: World) -> None:
    world = nosuch_world
    alice = world.member("alice")
    member = await status_embed(world, alice)
    assert member["Archive remote"].startswith("`nosuch:x`"), member
    assert not any(word in repr(member) for word in OPERATOR_WORDS), member
    assert "not working" in member["Remote health"] or "not set up" in member["Remote health"], member

    since = len(world.env.http_requests)
    await world.say(alice, "!ritual 3")
    await wait_until(lambda: any(word in everything(world, since) for word in ("could not archive", "will retry")),
                     what="the ritual's archiving outcome")
    ritual = everything(world, since)
    assert not any(word in ritual for word in OPERATOR_WORDS), ritual

    admin = await status_embed(world, world.owner)
    assert "RCLONE_CONFIG_NOSUCH_TYPE" in admin["Remote health"], admin

    refusal = await said(world, alice, "!testmega")
    assert "admins" in refusal and "HELIX_ADMIN" not in refusal, refusal


# -- item 3: retry per ritual --------------------------------------------------------------------


async def test_retrying_one_file_of_a_failed_ritual_retries_the_ritual_and_updates_its_message(
        local_world: World) -> None:
    world = local_world
    blocker = Path(world.archive.service.remote.root.fs) / "rituals"
    blocker.write_text("not a folder")  # the archive folder is broken: every ritual upload fails for good

    since = len(world.env.http_requests)
    await world.say(world.member("alice"), "!ritual 3")
    await wait_until(lambda: "could not archive" in everything(world, since), what="the ritual's failure")
    failed = everything(world, since)
    hint = re.search(r"`!outbox retry (\d+)`[^\"']*", failed)
    assert hint and "whole ritual" in hint.group(0), failed

    blocker.unlink()  # fixed
    reply = await said(world, world.owner, f"!outbox retry {hint.group(1)}")
    assert "#1" in reply and "#2" in reply, reply
    await drained(world)
    counts = await world.archive.outbox.counts()
    assert counts.failed == 0 and counts.pending == 0, counts
    await wait_until(lambda: "archived later" in everything(world, since), what="the ritual's message edited")


# -- item 9: !outbox -----------------------------------------------------------------------------


async def test_a_long_outbox_listing_keeps_whole_lines_and_its_hint(local_world: World, tmp_path: Path) -> None:
    world = local_world
    await world.archive.worker.stop(1.0)  # nothing lands: everything stays listed
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 10)
    for n in range(30):
        await world.archive.outbox.enqueue(src, f"uploads/{'long-name-' * 12}{n:02d}.bin", kind="test")
    since = len(world.env.http_requests)
    await world.say(world.owner, "!outbox")
    [reply] = answers(world, since)
    content = reply["content"]
    assert len(content) <= 2000
    lines = content.splitlines()
    assert lines[-1].startswith("`!outbox retry <id|all>`"), lines[-1]
    assert re.fullmatch(r"…and \d+ more\.", lines[-2]), lines[-2]
    assert all(line.endswith(("tries", ")")) for line in lines[1:-2]), lines


async def test_outbox_names_an_unknown_subcommand_and_its_usage_matches_the_readme(local_world: World) -> None:
    world = local_world
    reply = await said(world, world.owner, "!outbox frob")
    assert "no" in reply and "frob" in reply and "Outbox**:" not in reply, reply
    assert world.bot.get_command("outbox retry").signature == "<id|all>"
    helped = await said(world, world.owner, "!help outbox retry")
    assert "id|all" in helped and "which" not in helped, helped
    missing = await said(world, world.owner, "!outbox retry")
    assert "for example `!outbox retry 3`" in missing and "which" not in missing, missing


# -- items 11 and 12: !ritual's argument ---------------------------------------------------------


async def test_ritual_steps_take_ascii_digits_only(local_world: World) -> None:
    world = local_world
    reply = await said(world, world.member("alice"), "!ritual ٣")
    assert "Ritual of" not in reply and "`steps` must be a whole number from 1 to" in reply, reply


async def test_slash_ritual_declares_its_range_and_help_describes_steps(local_world: World) -> None:
    world = local_world
    [steps] = world.bot.tree.get_command("ritual").to_dict(world.bot.tree)["options"]
    assert (steps["min_value"], steps["max_value"]) == (1, world.bot.settings.ritual_max_steps), steps
    helped = await said(world, world.member("alice"), "!help ritual")
    assert "No description given" not in helped and "steps" in helped, helped


async def test_help_explains_every_command_and_each_of_its_arguments(local_world: World) -> None:
    world = local_world
    unexplained = {}
    for command in world.bot.walk_commands():
        helped = await said(world, world.owner, f"!help {command.qualified_name}")
        if not command.short_doc or "No description given" in helped:
            unexplained[command.qualified_name] = command.short_doc or "(no help line)"
    assert not unexplained, unexplained


async def test_a_range_error_comes_before_the_cooldown_and_hints_have_one_style(local_world: World) -> None:
    world = local_world
    alice = world.member("alice")
    assert "Ritual of 2 steps" in await said(world, alice, "!ritual 2")  # the cooldown runs from here
    with pytest.raises(OptionError, match="steps"):  # Discord's UI refuses it before any cooldown
        await world.say(alice, "/ritual steps:-5")
    for text in ("!ritual -5", "!ritual 0", "!ritual abc"):
        reply = await said(world, alice, text)
        assert "Slow down" not in reply, (text, reply)
        assert "for example `!ritual 108`" in reply, (text, reply)
    reply = await said(world, alice, "!ritual 1 2")
    assert "for example `!ritual 108`" in reply and "[steps" not in reply, reply
    slow = await said(world, alice, "!ritual 5")
    assert f"Slow down: you can use !ritual again in {COOLDOWN_S} s" in slow, slow

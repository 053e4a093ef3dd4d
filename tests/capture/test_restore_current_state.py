"""A restore shows the channel as it stands now: edits applied where the message is, deletions marked."""

from __future__ import annotations

import asyncio
import html
import os
import re
from pathlib import Path

from bot.sim.world import World, simulated_guild
from tests.bot.test_capture_watch import watch_world  # noqa: F401
from tests.bot.test_threads_watch import watch_settings
from tests.bot.test_watch_gaps import watched
from tests.bot.test_watch_removed_files import posted_with_files, revisions
from tests.capture.test_restore import restore
from tests.support.browser import run_chromium
from tests.support.capture import blob_files, cdn, segment_lines, storage  # noqa: F401
from tests.support.waiting import wait_until


def shown(page: Path) -> str:
    """The words a person sees on ``page`` in Chromium (its DOM, tags and styles taken out)."""
    dom = run_chromium("--virtual-time-budget=3000", "--dump-dom", page.as_uri()).stdout
    dom = re.sub(r"<style>.*?</style>", "", dom, flags=re.DOTALL)
    dom = re.sub(r"</?(?:div|p|h\d|li|ul|header|main|blockquote|pre|br|title)\b[^>]*>", " ", dom)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", dom)).split())


async def test_an_edit_and_a_deletion_show_on_the_message_they_changed(watch_world: World, data_dir: Path,  # noqa: F811
                                                                      tmp_path: Path):
    world = watch_world
    env, be = world.env, world.env.backend
    keep = world.capture.settings.keep_deleted
    general = world.guild.create_text_channel("general")
    alice, bob = world.member("alice"), world.member("bob")
    root = storage(world)
    lines = lambda: segment_lines(root, world.guild.id, general.id)  # noqa: E731
    await world.say(world.owner, f"!watch <#{general.id}>")
    await wait_until(lambda: world.capture.catalogue.call("channel", general.id), what="the channel is known")

    first = be.create_message(general.id, alice.id, "the launch is on Friday")
    second = be.create_message(general.id, bob.id, "my secret plan")
    await env.settle()
    await wait_until(lambda: {str(first.id), str(second.id)} <= {r["id"] for r in lines()}, what="both landed")
    be.edit_message(general.id, first.id, {"content": "the launch is on Saturday"})
    await env.settle()
    await wait_until(lambda: any(r["type"] == "revision" for r in lines()), what="the edit is a revision")
    be.delete_message(general.id, second.id)
    await env.settle()
    await wait_until(lambda: any(r["type"] == "tombstone" for r in lines()), what="the deletion is a tombstone")
    assert await world.archive.worker.drain(30)

    dest = tmp_path / "restored"
    code, out, err = await asyncio.to_thread(restore, data_dir, f"{world.guild.id}/{general.id}", dest)
    assert code == 0, err
    pages = sorted(dest.glob(f"discord/{world.guild.id}/{general.id}/restored/*.html"))
    with_messages = {s.stem for s in (root / f"discord/{world.guild.id}/{general.id}/messages").glob("*.jsonl")
                     if any('"type":"message"' in line or ('"tombstone"' in line and not keep)
                            for line in s.read_text().splitlines())}
    assert {p.stem for p in pages} == with_messages and pages
    seen = " ".join(await asyncio.gather(*(asyncio.to_thread(shown, p) for p in pages)))
    assert "0 messages" not in seen, seen
    assert re.search(r"alice ?[\d-]+ [\d:]+ UTC ?\(edited\) the launch is on Saturday", seen), seen
    assert "Friday" not in seen, seen
    if keep:
        assert "my secret plan" in seen and "(deleted" in seen, seen
    else:
        assert "my secret plan" not in seen and "message deleted" in seen, seen
    assert sum(p.stem in (dest / "index.html").read_text() for p in pages) == len(pages)


async def test_a_mention_added_by_an_edit_shows_by_name(watch_world: World, data_dir: Path,  # noqa: F811
                                                        tmp_path: Path):
    world = watch_world
    env, be = world.env, world.env.backend
    alice, bob = world.member("alice"), world.member("bob")
    await world.say(world.owner, f"!watch <#{world.channel.id}>")
    posted = be.create_message(world.channel.id, alice.id, "the launch moved to Monday")
    await env.settle()
    lines = lambda: segment_lines(storage(world), world.guild.id, world.channel.id)  # noqa: E731
    await wait_until(lambda: str(posted.id) in {r["id"] for r in lines()} or None, 30, "archived")
    be.edit_message(world.channel.id, posted.id, {"content": f"the launch moved to Monday, <@{bob.id}> please confirm"})
    await env.settle()
    await wait_until(lambda: any(r["type"] == "revision" for r in lines()) or None, 30, "the edit is a revision")
    assert await world.archive.worker.drain(30)
    dest = tmp_path / "restored"
    code, _, err = await asyncio.to_thread(restore, data_dir, f"{world.guild.id}/{world.channel.id}", dest)
    assert code == 0, err
    page = "\n".join(p.read_text() for p in dest.glob("discord/*/*/restored/*.html"))
    assert 'Monday, <span class="mention">@bob</span> please confirm' in page and f"@{bob.id}" not in page


async def test_a_file_an_edit_removed_is_not_called_missing(data_dir: Path, tmp_path: Path, cdn):  # noqa: F811
    """Its bytes left the remote with it: the restore is complete without it."""
    async with simulated_guild(watch_settings(data_dir)) as world:
        general, mine, meme = await posted_with_files(world, cdn)
        kept = world.env.backend.messages[general.id][mine.id].attachments[1]  # the meme
        world.env.backend.edit_message(general.id, mine.id, {"attachments": [kept]})  # alice takes her ID card back
        await world.env.settle()
        await wait_until(lambda: revisions(world, general.id) or None, 30, "the edit is a revision")
        assert await world.archive.worker.drain(30)
        guild_id = world.guild.id
        # the ID card's bytes left the remote, as they should; the meme stays
        await wait_until(lambda: len(blob_files(storage(world))) == 1 or None, 30, "the ID card's bytes left")
    dest = tmp_path / "restored"
    code, out, err = await asyncio.to_thread(restore, data_dir, f"{guild_id}/{general.id}", dest)
    assert "missing" not in err and code == 0, (code, err)
    assert "meme.png" in [p.name for p in dest.glob("files/*/*")] and not list(dest.glob("files/*/*card*"))


async def test_a_restore_refreshed_after_a_deletion_no_longer_holds_its_file(data_dir: Path, tmp_path: Path,
                                                                           cdn):  # noqa: F811
    dest = tmp_path / "restored"
    card = os.urandom(4000)
    async with simulated_guild(watch_settings(data_dir)) as world:
        env, be = world.env, world.env.backend
        general = await watched(world, "general")
        oops = be.create_message(general.id, world.member("alice").id, "oops, wrong channel", attachments=[
            cdn.attachment(env, general.id, "my-id-card.png", card, "image/png")])
        await env.settle()
        await wait_until(lambda: len(blob_files(storage(world))) == 1 or None, 30, "the file landed")
        assert await world.archive.worker.drain(30)
        target = f"{world.guild.id}/{general.id}"
        code, _, err = await asyncio.to_thread(restore, data_dir, target, dest)
        assert code == 0, err
        assert [p.read_bytes() for p in dest.glob("files/*/my-id-card.png")] == [card]

        be.delete_message(general.id, oops.id)  # alice deletes it; HELIX_KEEP_DELETED is off
        await env.settle()
        await wait_until(lambda: any(r["type"] == "tombstone" for r in segment_lines(storage(world), world.guild.id,
                                                                                    general.id)), 30, "redacted")
        await wait_until(lambda: not blob_files(storage(world)) or None, 30, "its bytes left the remote")
        assert await world.archive.worker.drain(30)

    code, _, err = await asyncio.to_thread(restore, data_dir, target, dest)  # the operator refreshes the restore
    assert code == 0, err
    left = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and p.read_bytes() == card)
    assert left == [], left

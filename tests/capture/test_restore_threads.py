"""A channel restores with its threads, a forum with its posts, and names stand where the ids were."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from simcord.enums import ChannelType

from bot.sim.world import World
from tests.capture.test_restore import restore
from tests.capture.test_restore_current_state import shown
from tests.support.capture import backup_finished, segment_lines, storage


async def test_a_channel_restores_with_its_threads_and_a_forum_with_its_posts(local_world: World, data_dir: Path,
                                                                              tmp_path: Path, cdn):  # noqa: F811
    world = local_world
    env, be, guild = world.env, world.env.backend, world.guild
    alice, bob = world.member("alice"), world.member("bob")
    staff = guild.create_role("Staff")
    work = guild.create_category("work")
    text = guild.create_text_channel("projects", category=work)
    starter = be.create_message(text.id, alice.id, f"kick-off for <@{bob.id}> and <@&{staff.id}>, see <#{text.id}> "
                                f"<:blobwave:1122334455> at <t:1767225600:F>")
    thread = be.create_thread(text.id, "design", alice.id, type=ChannelType.PUBLIC_THREAD, message_id=starter.id)
    be.create_message(thread.id, bob.id, "in the thread")
    forum = guild.create_forum_channel("help")
    post = be.create_thread(forum.id, "How do I?", alice.id, broadcast=False)
    be.announce_thread_create(post)
    be.create_message(post.id, alice.id, "question body")
    await env.settle()
    await world.say(world.owner, f"!backup <#{text.id}> threads")
    assert (await backup_finished(world, text.id)).state == "done"
    await world.say(world.owner, f"!backup <#{forum.id}>")
    assert (await backup_finished(world, forum.id)).state == "done"
    root = storage(world)

    # a channel in a category is not a thread: only threads name a parent
    manifest = json.loads((root / f"discord/{guild.id}/{text.id}/channel.json").read_text())
    assert manifest["channel"]["parent_id"] is None, manifest
    assert json.loads((root / f"discord/{guild.id}/{thread.id}/channel.json").read_text())["channel"][
        "parent_id"] == str(text.id)
    # the names of what a message mentions are archived with it
    [kick] = [r for r in segment_lines(root, guild.id, text.id) if r["content"].startswith("kick-off")]
    assert kick["mentions"]["users"] == {str(bob.id): "bob"}, kick
    assert kick["mentions"]["roles"] == {str(staff.id): "Staff"}, kick

    dest = tmp_path / "projects"
    code, _, err = await asyncio.to_thread(restore, data_dir, f"{guild.id}/{text.id}", dest)
    assert code == 0, err
    index = (dest / "index.html").read_text()
    assert "design" in index and f"{thread.id}/restored/" in index, index
    [main] = dest.glob(f"discord/{guild.id}/{text.id}/restored/*.html")
    [inside] = dest.glob(f"discord/{guild.id}/{thread.id}/restored/*.html")
    seen = await asyncio.to_thread(shown, main)
    assert "kick-off for @bob and @Staff, see #projects :blobwave: at Thursday, 1 January 2026 00:00 UTC" in seen, seen
    assert "thread: design" in seen, seen
    assert f'href="../../{thread.id}/restored/{inside.name}"' in main.read_text()  # from the message that started it
    thread_seen = await asyncio.to_thread(shown, inside)
    assert "in the thread" in thread_seen and "thread in #projects" in thread_seen, thread_seen

    dest = tmp_path / "help"
    code, _, err = await asyncio.to_thread(restore, data_dir, f"{guild.id}/{forum.id}", dest)
    assert code == 0, err
    index = (dest / "index.html").read_text()
    assert "How do I?" in index, index
    [page] = dest.glob(f"discord/{guild.id}/{post.id}/restored/*.html")
    assert f"discord/{guild.id}/{post.id}/restored/{page.name}" in index
    post_seen = await asyncio.to_thread(shown, page)
    assert "question body" in post_seen, post_seen
    assert "post in #help" in post_seen, post_seen  # the forum's channel.json names it, though it holds no message
    remote = Path(world.archive.settings.archive_dir)
    [segment_page] = remote.glob(f"discord/{guild.id}/{post.id}/transcript/*.html")
    assert "post in #help" in segment_page.read_text()  # the remote's own page says whose post it is too

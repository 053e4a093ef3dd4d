"""``!backup``: a channel's whole history, its files stored once by content, and a second run that adds nothing."""

from __future__ import annotations

import json
import os
from dataclasses import replace

from simcord.enums import ChannelType

from tests.support.capture import backup_finished, blob_files, segment_lines, sha256, storage
from tests.support.world import bot_messages


async def test_a_thousand_messages_with_fifty_files_ten_identical(local_world, cdn):  # noqa: F811
    world = local_world
    env, be = world.env, world.env.backend
    general = world.guild.create_text_channel("general")
    alice = world.member("alice")
    same = os.urandom(3000)
    for i in range(1000):
        atts = []
        if i % 20 == 0:
            k = i // 20
            data = same if k < 10 else os.urandom(2000 + k)
            atts = [cdn.attachment(env, general.id, f"photo-{k}.png", data, "image/png")]
        be.create_message(general.id, alice.id, f"message **{i}**", attachments=atts, broadcast=False)
    await env.settle()

    since = len(env.http_requests)
    lines = await world.say(world.owner, f"!backup <#{general.id}>")
    assert any("Backing up" in line for line in lines), lines
    row = await backup_finished(world, general.id)
    assert row.state == "done", row

    root = storage(world)
    records = segment_lines(root, world.guild.id, general.id)
    ids = [r["id"] for r in records if r["type"] == "message"]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert ids == sorted(ids, key=int), "records are oldest first"
    blobs = blob_files(root)
    assert len(blobs) == 41
    assert all(sha256(path) == name for name, path in blobs.items())
    with_files = [r for r in records if r["attachments"]]
    assert len(with_files) == 50
    assert all((root / r["attachments"][0]["blob"]).is_file() for r in with_files)
    manifest = json.loads((root / f"discord/{world.guild.id}/{general.id}/channel.json").read_text())
    assert manifest["format"] == 1 and manifest["channel"]["name"] == "general"
    assert sum(s["records"] for s in manifest["segments"]) == 1000
    assert all((root / s["transcript"]).is_file() for s in manifest["segments"])
    edits = [m.get("content") or "" for m in bot_messages(world, since) if m["method"] == "PATCH"]
    assert any("done" in e and "1,000 messages scanned" in e for e in edits), edits

    before = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    await world.say(world.owner, f"!backup <#{general.id}>")
    row = await backup_finished(world, general.id, count=2)
    assert row.state == "done" and row.archived == 0
    after = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    new = sorted(after - before)
    assert not [p for p in new if "/messages/" in p or p.startswith("blobs/")], new


async def test_threads_forum_posts_big_and_gone_files_status_and_a_small_spool(local_world, cdn):  # noqa: F811
    world = local_world
    env, be = world.env, world.env.backend
    world.capture.settings = replace(world.capture.settings, max_attachment_bytes=1 << 20, spool_max_bytes=9000)
    alice = world.member("alice")
    text = world.guild.create_text_channel("projects")
    files = [cdn.attachment(env, text.id, f"f{i}.bin", os.urandom(4000)) for i in range(5)]
    big = cdn.attachment(env, text.id, "huge.iso", os.urandom((1 << 20) + 1))
    gone = cdn.attachment(env, text.id, "vanished.txt", b"soon gone")
    starter = be.create_message(text.id, alice.id, "kick-off", attachments=[*files, big, gone])
    cdn.forget(env, gone["url"])
    thread = be.create_thread(text.id, "design", alice.id, type=ChannelType.PUBLIC_THREAD, message_id=starter.id)
    be.create_message(thread.id, alice.id, "in the thread")
    archived = be.create_thread(text.id, "old", alice.id, type=ChannelType.PUBLIC_THREAD)
    be.create_message(archived.id, alice.id, "in an archived thread")
    be.edit_channel(archived.id, {}, thread_metadata={"archived": True, "locked": False})
    forum = world.guild.create_forum_channel("help")
    post = be.create_thread(forum.id, "How do I?", alice.id, broadcast=False)
    be.announce_thread_create(post)
    be.create_message(post.id, alice.id, "question body")
    await env.settle()

    since = len(env.http_requests)
    await world.say(world.owner, f"!backup <#{text.id}> threads")
    row = await backup_finished(world, text.id)
    assert row.state == "done" and row.too_big == 1 and row.missing == 1, row
    final = [m.get("content") or "" for m in bot_messages(world, since) if m["method"] == "PATCH"][-1]
    assert "1 file over HELIX_MAX_ATTACHMENT_MB recorded, not downloaded" in final, final
    assert "1 file already gone from Discord" in final, final
    root = storage(world)
    [kick] = [r for r in segment_lines(root, world.guild.id, text.id) if r["content"] == "kick-off"]
    assert [a["status"] for a in kick["attachments"]] == ["saved"] * 5 + ["too_big", "missing"]
    assert [r["content"] for r in segment_lines(root, world.guild.id, thread.id)] == ["in the thread"]
    assert [r["content"] for r in segment_lines(root, world.guild.id, archived.id)] == ["in an archived thread"]

    await world.say(world.owner, f"!backup <#{forum.id}>")  # a forum: its posts always
    assert (await backup_finished(world, forum.id)).state == "done"
    assert [r["content"] for r in segment_lines(root, world.guild.id, post.id)] == ["question body"]
    status = await world.say(world.owner, "!backup status")
    assert any(f"<#{forum.id}> · done" in line or "done" in line for line in status), status
    cancel = await world.say(world.owner, f"!backup cancel <#{text.id}>")
    assert any("No backup of" in line for line in cancel), cancel


async def test_slash_backup_and_watch(local_world, cdn):  # noqa: F811
    world = local_world
    general = world.guild.create_text_channel("general")
    world.env.backend.create_message(general.id, world.member("alice").id, "hello from slash", broadcast=False)
    available = world.owner.available_commands(world.channel)
    assert {"backup channel", "backup status", "backup cancel", "watch", "unwatch", "watching", "archive"} <= set(
        available), available
    result = await world.owner.slash(world.channel, "backup channel", channel=general)
    # One answer, edited in place: a one-message backup may already be done when it is read.
    assert any(word in result.response.content for word in ("Backing up", f"Backup of <#{general.id}> done"))
    assert (await backup_finished(world, general.id)).state == "done"
    assert [r["content"] for r in segment_lines(storage(world), world.guild.id, general.id)] == ["hello from slash"]
    result = await world.owner.slash(world.channel, "watching")
    assert result.response.content == "No channel is watched: start with `!watch #channel`."

"""``!backup``: a channel's whole history, its files stored once by content, and a second run that adds nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import discord
from simcord.enums import ChannelType

from bot.sim.world import simulated_guild
from tests.bot.test_capture_races import settings
from tests.support.capture import backup_finished, blob_files, segment_lines, sha256, storage
from tests.support.waiting import wait_until
from tests.support.world import answer_to, answers, bot_messages, last_edit, private_channel

STATUS_LINE = r"<#{channel}> · {kind}{state}, started <t:\d+:R> · {counts}"


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
    # The last edit waits to see the files land (the upload check polls): it follows the drain.
    await wait_until(lambda: "done" in last_edit(world, since), what="the backup's last edit")
    assert "1,000 messages scanned" in last_edit(world, since), last_edit(world, since)

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
    await wait_until(lambda: "✅" in last_edit(world, since), what="the backup's last edit")
    final = last_edit(world, since)
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
    assert result.response.content == "No channel you can read is watched: start with `!watch #channel`."


async def test_a_manager_who_cannot_read_a_channel_can_neither_back_it_up_nor_see_its_backups(local_world, cdn):  # noqa: F811
    world = local_world
    env, be, guild = world.env, world.env.backend, world.guild
    staff = guild.create_role("Staff")
    secret = private_channel(world, "staff-only", staff)
    general = guild.create_text_channel("general")
    be.add_member_role(guild.id, world.owner.id, staff.id)
    managers = guild.create_role("Managers", permissions=discord.Permissions(manage_guild=True))
    carol = guild.add_member(env.create_user("carol"), roles=[managers])  # may manage backups, not on the staff
    be.create_message(secret.id, world.owner.id, "the staff's plans", broadcast=False)
    be.create_message(general.id, carol.id, "hello all", broadcast=False)
    plans = be.create_thread(general.id, "plans", world.owner.id, type=ChannelType.PRIVATE_THREAD)
    be.add_thread_member(plans.id, be.bot_user.id)
    await env.settle()
    await world.say(world.owner, f"!backup <#{secret.id}>")
    assert (await backup_finished(world, secret.id)).state == "done"

    # Carol sees no trace of the staff's backup, and cannot start, nor stop, one there
    assert await answer_to(world, carol, "!backup status") == (
        "No backup of a channel you can read has run yet: start one with `!backup #channel`.")
    # (told as a name that matches no channel: a manager must not learn by guessing which hidden ones exist)
    unknown = "`channel` must be a channel, forum or thread of this server: for example `!backup #general`."
    assert await answer_to(world, carol, f"!backup <#{secret.id}>") == unknown
    assert await answer_to(world, carol, f"!backup <#{plans.id}>") == unknown  # a private thread she is not in
    assert await answer_to(world, carol, f"!backup cancel <#{secret.id}>") == (
        "`channel` must be a channel, forum or thread of this server: for example `!backup cancel #general`.")
    # Discord offers slash commands only the channels one can see: one she sees, without its history
    notices = guild.create_text_channel("notices", overwrites={
        guild.default_role: discord.PermissionOverwrite(read_message_history=False),
        world.bot.get_guild(guild.id).me: discord.PermissionOverwrite(read_message_history=True)})
    await env.settle()
    result = await carol.slash(world.channel, "backup channel", channel=notices)
    assert result.ephemeral and result.response.content == "You can't read that channel, so I won't back it up for you."
    assert world.env.errors
    assert [r.channel_id for r in await world.capture.catalogue.call("backups")] == [secret.id]

    # what she can read, she backs up and sees
    await world.say(carol, f"!backup <#{general.id}>")
    assert (await backup_finished(world, general.id)).state == "done"
    status = await answer_to(world, carol, "!backup status")  # her message, and "started a thread" for the plans
    assert re.fullmatch(STATUS_LINE.format(channel=general.id, kind="", state="done",
                                           counts=r"2 scanned, 2 new, 0 files \(0 B\)"), status), status
    # the owner is staff: typed where carol reads too, the staff's backup stays out of the answer
    status = (await answer_to(world, world.owner, "!backup status")).splitlines()
    assert len(status) == 2 and status[1] == (
        "-# Channels not everyone here can read are left out: `/backup status` shows them to you alone.")
    result = await world.owner.slash(world.channel, "backup status")
    assert result.ephemeral and len(result.response.content.splitlines()) == 2  # the staff see both


async def test_a_word_after_the_channel_other_than_threads_is_refused(local_world, cdn):  # noqa: F811
    world = local_world
    launch = world.guild.create_text_channel("launch")
    for text in (f"!backup <#{launch.id}> thread", f"!backup <#{launch.id}> foo", f"!backup <#{launch.id}> threads x"):
        assert await answer_to(world, world.owner, text) == (
            "`threads` is the only word after the channel: for example `!backup #general threads`."), text
    assert await world.capture.catalogue.call("backups") == [], "no backup started"
    await world.say(world.owner, f"!backup <#{launch.id}> threads")
    row = await backup_finished(world, launch.id)
    assert row.state == "done" and row.threads


async def test_status_says_when_each_backup_started_counts_a_running_one_live_and_names_a_catch_up(
        local_world, cdn):  # noqa: F811
    world = local_world
    env, be = world.env, world.env.backend
    world.capture.settings = replace(world.capture.settings, spool_max_bytes=9000)
    launch = world.guild.create_text_channel("launch")
    alice = world.member("alice")
    for i in range(3):
        be.create_message(launch.id, alice.id, f"photo {i}", broadcast=False,
                          attachments=[cdn.attachment(env, launch.id, f"photo-{i}.bin", os.urandom(4000))])
    await env.settle()

    # nothing leaves the spool: the backup holds two files and waits for room for the third
    await world.archive.worker.stop(1.0)
    since = len(env.http_requests)
    await world.say(world.owner, f"!backup <#{launch.id}>")

    async def two_files_held() -> bool:
        return await world.capture.catalogue.call("queued_blob_bytes") == 8000

    await wait_until(two_files_held, 30, "two files on the spool")
    await wait_until(lambda: "paused" in last_edit(world, since), 30, "the backup to pause")
    status = await answer_to(world, world.owner, "!backup status")
    # the page is counted as the progress message counts it, not as its row will once the page is done
    assert re.fullmatch(STATUS_LINE.format(channel=launch.id, kind="", state="running",
                                           counts=r"3 scanned, 0 new, 2 files \(7\.8 KiB\)"), status), status

    world.archive.worker.start()
    assert (await backup_finished(world, launch.id)).state == "done"
    await wait_until(lambda: "done" in last_edit(world, since), 30, "the progress message to end")
    assert last_edit(world, since).startswith(f"✅ Backup of <#{launch.id}> done: 3 messages scanned, 3 new, 3 files")

    # a second backup finds nothing new: the channel is up to date, not empty
    since = len(env.http_requests)
    await world.say(world.owner, f"!backup <#{launch.id}>")
    assert (await backup_finished(world, launch.id, count=2)).archived == 0
    await wait_until(lambda: "✅" in last_edit(world, since), 30, "the progress message to end")
    assert last_edit(world, since) == f"✅ <#{launch.id}> is up to date: nothing new since the last backup."
    # ...while a first backup of a channel with no message says just that
    quiet = world.guild.create_text_channel("quiet")
    since = len(env.http_requests)
    await world.say(world.owner, f"!backup <#{quiet.id}>")
    await backup_finished(world, quiet.id)
    await wait_until(lambda: "✅" in last_edit(world, since), 30, "the progress message to end")
    assert last_edit(world, since).startswith(f"✅ Backup of <#{quiet.id}> done: 0 messages scanned, 0 new"), (
        last_edit(world, since))

    # a watch's catch-up is named as such, not shown as one more backup
    await world.say(world.owner, f"!watch <#{launch.id}>")
    await backup_finished(world, launch.id, count=3)
    [catch_up, *_] = (await answer_to(world, world.owner, "!backup status")).splitlines()
    assert re.fullmatch(STATUS_LINE.format(channel=launch.id, kind="catch-up after !watch · ", state="done",
                                           counts=r"0 scanned, 0 new, 0 files \(0 B\)"), catch_up), catch_up


async def test_a_slash_refusal_is_seen_by_the_invoker_alone_and_fits_the_command(local_world, cdn):  # noqa: F811
    world = local_world
    bob = world.member("bob")
    refusal = "Only admins or members with Manage Server can manage backups and watches."
    for name, options in (("backup status", {}), ("unwatch", {"channel": world.channel}),
                          ("backup channel", {"channel": world.channel})):
        result = await bob.slash(world.channel, name, **options)
        assert result.ephemeral and result.response.content == refusal, (name, result.response.content)
    assert await answer_to(world, bob, "!backup status") == refusal
    assert world.env.errors


async def test_threads_is_one_word_however_it_is_capitalised_and_the_slash_option_still_offers_it(
        local_world, cdn):  # noqa: F811
    world = local_world
    launch, notes = world.guild.create_text_channel("launch"), world.guild.create_text_channel("notes")
    said = await answer_to(world, world.owner, f"!backup <#{launch.id}> Threads")
    assert said == f"📦 Backing up <#{launch.id}> and its threads…", said
    row = await backup_finished(world, launch.id)
    assert row.state == "done" and row.threads, row
    result = await world.owner.slash(world.channel, "backup channel", channel=notes, threads="threads")
    assert "and its threads" in result.response.content or "done" in result.response.content, result.response.content
    assert (await backup_finished(world, notes.id)).threads


async def test_a_thread_backed_up_with_its_channel_shows_when_in_archives(local_world, cdn):  # noqa: F811
    world = local_world
    be = world.env.backend
    alice = world.member("alice")
    launch = world.guild.create_text_channel("launch")
    starter = be.create_message(launch.id, alice.id, "go for launch")
    countdown = be.create_thread(launch.id, "countdown", alice.id, type=ChannelType.PUBLIC_THREAD,
                                 message_id=starter.id)
    be.create_message(countdown.id, alice.id, "T minus 10")
    await world.env.settle()
    await world.say(world.owner, f"!backup <#{launch.id}> threads")
    assert (await backup_finished(world, launch.id)).state == "done"

    result = await world.owner.slash(world.channel, "archives")
    assert result.ephemeral
    rows = {line.split(" · ")[0]: line for line in result.response.content.splitlines()[1:]}
    assert re.search(r" · last backup <t:\d+:R> · ", rows[f"<#{countdown.id}>"]), result.response.content
    assert re.search(r" · last backup <t:\d+:R> · ", rows[f"<#{launch.id}>"]), result.response.content


async def test_a_backup_the_remote_refuses_says_its_files_wait_in_the_outbox(local_world, cdn):  # noqa: F811
    """The catalogue holds the backup and the outbox uploads it later: the answer says so, not "→ path"."""
    world = local_world
    env, be = world.env, world.env.backend
    launch = world.guild.create_text_channel("launch")
    alice = world.member("alice")
    be.create_message(launch.id, alice.id, "photo", broadcast=False,
                      attachments=[cdn.attachment(env, launch.id, "photo.bin", os.urandom(5000))])
    for i in range(2):
        be.create_message(launch.id, alice.id, f"words {i}", broadcast=False)
    await env.settle()
    root = Path(world.archive.service.remote.root.fs)
    for folder in ("discord", "blobs"):
        (root / folder).write_text("not a folder")  # the archive folder is broken: every upload fails

    since = len(env.http_requests)
    await world.say(world.owner, f"!backup <#{launch.id}>")
    await wait_until(lambda: any("✅" in (m.get("content") or "") for m in bot_messages(world, since)), 60,
                     "the backup's last answer")
    assert last_edit(world, since) == (
        f"✅ Backup of <#{launch.id}> done: 3 messages scanned, 3 new, 1 file saved (4.9 KiB), kept here; ⚠️ the "
        "archive remote is not taking files now, so they wait in the outbox (the bot's owner sees them with "
        "`!outbox`) and go up when it is back."), last_edit(world, since)
    counts = await world.archive.outbox.counts()
    assert counts.done == 0 and counts.failed + counts.pending >= 2, counts


async def test_a_bot_up_for_many_backups_keeps_the_counts_of_only_the_latest(local_world, monkeypatch):
    """Each backup's live counts are kept past its end for its last answer, not for ever: a long-lived
    bot would otherwise hold one per backup it ever ran. The rows keep what ``!backup status`` shows."""
    monkeypatch.setattr("capture.engine.FINISHED_TALLIES_KEPT", 2)
    world = local_world
    general = world.guild.create_text_channel("general")
    world.env.backend.create_message(general.id, world.member("alice").id, "hello", broadcast=False)
    await world.env.settle()
    for count in (1, 2, 3):
        await world.say(world.owner, f"!backup <#{general.id}>")
        await backup_finished(world, general.id, count=count)
    assert len(world.capture.tallies) == 2, world.capture.tallies
    shown = await answer_to(world, world.owner, "!backup status")
    assert shown.count("done") == 3 and "1 scanned" in shown, shown


async def test_a_thread_deleted_while_its_channel_is_backed_up_leaves_the_other_threads_backed_up(local_world):
    world = local_world
    env, be = world.env, world.env.backend
    alice = world.member("alice")
    launch = world.guild.create_text_channel("launch")
    be.create_message(launch.id, alice.id, "launch is friday", broadcast=False)
    doomed = be.create_thread(launch.id, "countdown", alice.id, type=ChannelType.PUBLIC_THREAD)
    kept = be.create_thread(launch.id, "weather", alice.id, type=ChannelType.PUBLIC_THREAD)
    for thread in (doomed, kept):
        be.create_message(thread.id, alice.id, f"news in {thread.name}", broadcast=False)
    await env.settle()

    def deleted_after_the_first_page(row, tally, finished) -> None:  # a moderator, mid-backup
        if doomed.id in be.channels:
            be.delete_channel(doomed.id)

    world.capture.subscribe(deleted_after_the_first_page)
    await world.say(world.owner, f"!backup <#{launch.id}> threads")
    row = await backup_finished(world, launch.id)
    assert row.state == "done", row
    await world.capture.flush_all()
    assert await world.archive.worker.drain(30)
    assert [r["content"] for r in segment_lines(storage(world), world.guild.id, kept.id)] == ["news in weather"]


async def test_a_server_available_again_mid_backup_leaves_its_quiet_threads_backed_up(data_dir: Path,
                                                                                      cdn):  # noqa: F811
    """The source after a reconnect has not listed the threads Discord archived for being quiet."""
    async with simulated_guild(settings(data_dir)) as world:
        env, be, alice = world.env, world.env.backend, world.member("alice")
        text = world.guild.create_text_channel("projects")
        files = [cdn.attachment(env, text.id, "plan.pdf", os.urandom(3000))]
        be.create_message(text.id, alice.id, "kick-off", attachments=files, broadcast=False)
        old = be.create_thread(text.id, "old", alice.id, type=ChannelType.PUBLIC_THREAD)
        be.create_message(old.id, alice.id, "in an archived thread")
        be.edit_channel(old.id, {}, thread_metadata={"archived": True, "locked": False})
        asked, let_go = cdn.hold(files[0]["url"])
        await env.settle()

        await world.say(world.owner, f"!backup <#{text.id}> threads")
        await wait_until(asked.is_set, 30, "the backup downloads the channel's file")
        # Discord's server comes back (on_guild_available), as after a gateway session was lost.
        world.bot.dispatch("guild_available", world.bot.get_guild(world.guild.id))
        await env.settle()
        let_go.set()
        row = await backup_finished(world, text.id)
        assert row.state == "done", row
        lines = segment_lines(storage(world), world.guild.id, old.id)
        assert [r["content"] for r in lines] == ["in an archived thread"], lines


def said_about(world, channel_id: int) -> list[str]:
    """What the bot's messages naming a channel say now (a backup's progress message as last edited), oldest first."""
    return [m.content for m in world.channel.history()
            if m.author.id == world.bot.user.id and f"<#{channel_id}>" in m.content]


def progress_of(world, channel_id: int) -> str:
    return (said_about(world, channel_id) or [""])[-1]


async def test_an_owner_cancels_a_backup_waiting_for_its_turn_and_hears_at_once(local_world, cdn):  # noqa: F811
    """Two backups hold the HELIX_BACKUP_CONCURRENCY turns; a third waits for one. Its cancel answers
    at once (not after 30 s with the backup still running), its message says so, and it never runs."""
    world = local_world
    env, be, alice = world.env, world.env.backend, world.member("alice")
    held = []
    for name in ("one", "two"):
        ch = world.guild.create_text_channel(name)
        f = cdn.attachment(env, ch.id, "big.bin", os.urandom(1000))
        be.create_message(ch.id, alice.id, "a file", attachments=[f], broadcast=False)
        held.append((ch, *cdn.hold(f["url"])))
    third = world.guild.create_text_channel("third")
    be.create_message(third.id, alice.id, "hello", broadcast=False)
    await env.settle()
    for ch, asked, _ in held:
        await world.say(world.owner, f"!backup <#{ch.id}>")
        await wait_until(asked.is_set, 10, "the backup holds a turn, downloading")
    await world.say(world.owner, f"!backup <#{third.id}>")  # waits for a turn

    since = len(env.http_requests)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(world.say(world.owner, f"!backup cancel <#{third.id}>"), 3)
    said = [a["content"] for a in answers(world, since)]
    rows = [r for r in await world.capture.catalogue.call("backups", limit=10) if r.channel_id == third.id]
    for _, _, let_go in held:
        let_go.set()
    assert said and rows[0].state == "cancelled", f"the cancel answered {said} and the backup is {rows[0].state!r}"
    assert "Cancelled the backup" in said[0], said
    told = f"⏹️ Backup of <#{third.id}> cancelled"
    await wait_until(lambda: any(t.startswith(told) for t in said_about(world, third.id)), 10,
                     lambda: f"its message tells the cancel: {said_about(world, third.id)}")

    for ch, _, _ in held:  # the turns free up: the cancelled backup does not take one
        assert (await backup_finished(world, ch.id)).state == "done"
    rows = [r for r in await world.capture.catalogue.call("backups", limit=10) if r.channel_id == third.id]
    assert [r.state for r in rows] == ["cancelled"], rows
    assert segment_lines(storage(world), world.guild.id, third.id) == []


async def test_every_backup_asked_for_during_a_rebuild_says_it_waits_for_it(local_world):
    """Backups waiting for a rebuild hold no turn: a third one, past HELIX_BACKUP_CONCURRENCY, says it
    waits for the rebuild too ("⏳ … waits: …"), not "📦 Backing up…" as if it ran."""
    world = local_world
    env, be, alice = world.env, world.env.backend, world.member("alice")
    await world.capture.catalogue.call("rebuild_begin")  # a rebuild is due (running, or cut short)
    chans = [world.guild.create_text_channel(name) for name in ("one", "two", "three")]
    for ch in chans:
        be.create_message(ch.id, alice.id, "hello", broadcast=False)
    await env.settle()
    for ch in chans:
        await world.say(world.owner, f"!backup <#{ch.id}>")
        with contextlib.suppress(AssertionError):
            await wait_until(lambda ch=ch: "waits" in progress_of(world, ch.id), 5)
    shown = {ch.name: progress_of(world, ch.id) for ch in chans}

    await world.capture.catalogue.call("rebuild_end")
    world.capture.rebuilt()
    for ch in chans:  # once it ends, each one runs
        assert (await backup_finished(world, ch.id)).state == "done"
    assert all(text.startswith("⏳") and "waits" in text for text in shown.values()), shown

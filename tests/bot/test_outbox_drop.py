"""``!outbox drop``: the owner gives up on an upload, and whoever waited on it is told.

A file from Discord that is dropped is not archived (the catalogue must not say it is, now or after
a restart), its room on the spool is free at once, and the next backup of its channel fetches it
again. A ritual whose files are dropped stops waiting and says so in its message.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

from bot.sim.world import World, simulated_guild
from capture import CaptureSettings
from sync._outbox import db as outbox_db
from tests.capture.test_rebuild import connected_again
from tests.support.capture import backup_finished, blob_files, cdn, segment_lines, sha256, storage  # noqa: F401
from tests.support.remotes import LoopbackRemote
from tests.support.waiting import wait_until
from tests.support.world import bot_settings

DROPPED = "🗑️ the bot's owner dropped this ritual's archive copy, so it will not be archived."
PHOTO = os.urandom(5000)
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()


async def blob_state(world: World, sha: str) -> str | None:
    blob = await world.capture.catalogue.call("blob", sha)
    return None if blob is None else blob.state


async def photos_backed_up_while_the_remote_refuses_files(world: World, cdn) -> tuple[object, int]:  # noqa: F811
    """Alice's photo in #photos, backed up while the archive cannot take any file (its ``blobs``
    folder is a file): the messages land, the photo fails for good. Returns (#photos, the photo's item id)."""
    env, be = world.env, world.env.backend
    photos = world.guild.create_text_channel("photos")
    be.create_message(photos.id, world.member("alice").id, "the launch, from the pad", broadcast=False,
                      attachments=[cdn.attachment(env, photos.id, "launch.jpg", PHOTO, "image/jpeg")])
    await env.settle()
    (storage(world) / "blobs").write_text("not a folder")
    await world.say(world.owner, f"!backup <#{photos.id}>")
    await backup_finished(world, photos.id)
    [failed] = [i for i in await world.archive.outbox.list(("failed",)) if i.kind == "capture-blob"]
    assert await blob_state(world, PHOTO_SHA) == "queued"
    assert await world.capture.catalogue.call("queued_blob_bytes") == len(PHOTO)
    return photos, failed.id


async def restarted(world: World, while_stopped=None) -> None:
    """Helix stops and starts again on the same data folder and archive (a deploy)."""
    await world.capture.close()
    await world.archive.close()
    if while_stopped is not None:
        while_stopped()
    await world.archive.start()
    await world.capture.start()
    await connected_again(world)


def ritual_message(world: World) -> str:
    """The ritual's one message as the channel reads it now (it is edited in place)."""
    found = [m.content for m in world.channel.history() if "**Ritual of 3 steps**" in (m.content or "")]
    return found[-1] if found else ""


async def test_a_dropped_file_is_not_archived_frees_the_spool_and_the_next_backup_fetches_it_again(
        local_world: World, cdn):  # noqa: F811
    world = local_world
    # Room for the photo and little more: were the dropped copy still counted, fetching it again would wait for ever.
    world.capture.settings = replace(world.capture.settings, spool_max_bytes=8000)
    photos, item_id = await photos_backed_up_while_the_remote_refuses_files(world, cdn)

    asked = "\n".join(await world.say(world.owner, f"!outbox drop {item_id}"))
    clicked = "\n".join(await world.click(world.owner, "Drop it"))
    assert await world.archive.outbox.get(item_id) is None
    assert await blob_state(world, PHOTO_SHA) not in ("queued", "landed")  # not archived, and not waiting
    assert await world.capture.catalogue.call("queued_blob_bytes") == 0
    assert await world.capture._spool_used(fresh=False) == 0  # the count the downloads go by, freed at once
    # A later backup may fetch the file again: the question does not promise "never".
    assert f"Drop #{item_id}" in asked and "will not be uploaded" in asked, asked
    assert f"Dropped #{item_id} (`blobs/sha256/" in clicked, clicked

    await restarted(world)
    assert await blob_state(world, PHOTO_SHA) not in ("queued", "landed")

    (storage(world) / "blobs").unlink()  # the archive is fixed
    await world.say(world.owner, f"!backup <#{photos.id}>")
    row = await backup_finished(world, photos.id, count=2)
    assert row.state == "done" and row.files == 1, row
    assert await blob_state(world, PHOTO_SHA) == "landed"
    landed = blob_files(storage(world))
    assert PHOTO_SHA in landed and sha256(landed[PHOTO_SHA]) == PHOTO_SHA


async def test_a_restart_after_a_drop_nobody_heard_of_does_not_take_the_file_for_landed(
        local_world: World, cdn):  # noqa: F811
    """Killed between the drop and its report: the item is gone and the catalogue still says queued.
    The remote decides then: a file it lacks is not archived, one it has (its item landed so long
    ago that its row was pruned) is."""
    world = local_world
    _, item_id = await photos_backed_up_while_the_remote_refuses_files(world, cdn)
    await world.archive.outbox.drop(item_id)  # the row goes; the report never leaves (a kill comes first)
    assert await blob_state(world, PHOTO_SHA) == "queued"

    (storage(world) / "blobs").unlink()
    env, be = world.env, world.env.backend
    general = world.guild.create_text_channel("general")
    old = os.urandom(3000)
    be.create_message(general.id, world.member("bob").id, "an old file", broadcast=False,
                      attachments=[cdn.attachment(env, general.id, "old.bin", old)])
    await env.settle()
    await world.say(world.owner, f"!backup <#{general.id}>")
    await backup_finished(world, general.id)
    old_sha = hashlib.sha256(old).hexdigest()
    [old_item] = [i for i in await world.archive.outbox.list(("done",)) if i.kind == "capture-blob"]
    # Its landing never reached the catalogue either, and that was 31 days ago: its row is pruned at the start.
    await world.capture.catalogue.call("set_blob_state", old_sha, "queued")

    def a_month_later() -> None:
        with sqlite3.connect(Path(world.archive.settings.data_dir) / "outbox.sqlite3") as conn:
            conn.execute("UPDATE items SET updated_at = updated_at - ? WHERE id = ?",
                         (outbox_db.DONE_KEPT_S + 86400, old_item.id))

    await restarted(world, while_stopped=a_month_later)
    assert await world.archive.outbox.get(old_item.id) is None
    assert await blob_state(world, PHOTO_SHA) not in ("queued", "landed")
    assert await blob_state(world, old_sha) == "landed"
    assert await world.capture.catalogue.call("queued_blob_bytes") == 0


async def test_a_segment_the_owner_drops_is_written_again_from_the_catalogue(webdav: LoopbackRemote, data_dir: Path):
    """Its lines are committed and the cursor is past them: were it not written again, the remote
    would never hold those messages. The worker's own advice for a copy lost on the disk is a drop."""
    settings = bot_settings(webdav.settings(data_dir), capture=CaptureSettings(watch_flush_s=0.2))
    async with simulated_guild(settings) as world:
        notes = world.guild.create_text_channel("notes")
        world.env.backend.create_message(notes.id, world.member("alice").id, "minutes of the launch meeting",
                                         broadcast=False)
        await world.env.settle()
        await asyncio.to_thread(webdav.stop)
        await world.say(world.owner, f"!backup <#{notes.id}>")

        async def waiting_segment() -> list:
            items = await world.archive.outbox.list(("pending", "uploading"))
            return [i for i in items if i.kind == "capture-segment"]

        for item in await wait_until(waiting_segment, what="the segment queued"):
            item.local_path.unlink()  # the disk loses the outbox's copies
        await asyncio.to_thread(webdav.start)

        async def failed_segment() -> list:
            return [i for i in await world.archive.outbox.list(("failed",)) if i.kind == "capture-segment"]

        first = (await wait_until(failed_segment, what="the segment failed for good"))[0]
        assert f"drop it with !outbox drop {first.id}" in first.last_error, first.last_error
        await world.say(world.owner, f"!outbox drop {first.id}")
        clicked = "\n".join(await world.click(world.owner, "Drop it"))

        async def landed() -> bool:
            return [s.state for s in await world.capture.catalogue.call("segments", notes.id)] == ["landed"]

        await wait_until(landed, 30, "the segment written again and landed")
        lines = segment_lines(webdav.storage, world.guild.id, notes.id)
        assert [r["content"] for r in lines] == ["minutes of the launch meeting"], lines
        assert f"Dropped #{first.id} and #{first.id + 1}" in clicked, clicked  # its transcript went with it


async def test_a_failed_ritual_whose_files_the_owner_drops_says_it_is_not_archived(local_world: World) -> None:
    world = local_world
    (storage(world) / "rituals").write_text("not a folder")  # every ritual upload fails for good
    await world.say(world.member("alice"), "!ritual 3")
    await wait_until(lambda: "could not archive" in ritual_message(world), what="the ritual's failure")

    await world.say(world.owner, "!outbox drop 1")
    clicked = "\n".join(await world.click(world.owner, "Drop it"))
    said = await wait_until(lambda: ritual_message(world) if DROPPED in ritual_message(world) else None,
                            what="the ritual's message says it was dropped")
    assert said.endswith(DROPPED) and "retry" not in said, said
    assert "Dropped #1 and #2" in clicked, clicked  # its manifest went with its image
    counts = await world.archive.outbox.counts()
    assert counts.failed == counts.pending == 0, counts


async def test_a_queued_ritual_whose_files_the_owner_drops_stops_waiting_and_says_so(
        webdav: LoopbackRemote, data_dir: Path) -> None:
    settings = bot_settings(webdav.settings(data_dir))
    # Retries far apart: between two of them the ritual's files wait in the queue, and can be dropped.
    settings = replace(settings, sync=replace(settings.sync, outbox_retry_base_s=120.0, outbox_retry_cap_s=120.0))
    async with simulated_guild(settings) as world:
        await asyncio.to_thread(webdav.stop)
        await world.say(world.member("alice"), "!ritual 3")
        await wait_until(lambda: "will retry" in ritual_message(world), what="the ritual queued")

        await world.say(world.owner, "!outbox drop 2")  # its manifest: the image goes with it
        clicked = "\n".join(await world.click(world.owner, "Drop it"))
        said = await wait_until(lambda: ritual_message(world) if DROPPED in ritual_message(world) else None,
                                what="the ritual's message says it was dropped")
        assert said.endswith(DROPPED) and "will retry" not in said, said
        assert world.bot.get_cog("Ritual")._runs == {}  # nothing waits on it any more
        assert "Dropped #1 and #2" in clicked, clicked
        counts = await world.archive.outbox.counts()
        assert counts.pending == counts.failed == counts.uploading == 0, counts

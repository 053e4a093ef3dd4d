"""The remote is the source of truth: a lost catalogue is rebuilt from its segments at start-up, and by ``!reindex``."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import time
from pathlib import Path

import pytest

from bot.helix import HelixBot
from bot.sim.world import World, simulated_guild
from capture import CaptureSettings
from capture.rebuild import RebuildProgress, read_lines, rebuild
from catalogue import Catalogue
from sync import SyncService, SyncSettings
from tests.catalogue.test_rebuild import captured, dump
from tests.support.archived import Archived, archived_server
from tests.support.capture import backup_finished
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until
from tests.support.world import answers, bot_messages, bot_settings, last_edit

QUERIES = ("launch", "code", "from:bob", "has:image", '"launch pad"', "after:2026-01-02")


async def found(world: World, who, text: str, where=None) -> list[str]:
    """What ``who`` finds asking in ``where`` (the bot's channel, which every member reads, by default)."""
    since = len(world.env.http_requests)
    await who.send(where or world.channel, f"!find {text}")
    return re.findall(r"archived id `(\d+)`", answers(world, since)[-1]["content"])


async def searched_archive(world: World, cdn: LocalCdn):
    """A server archived, what Alice finds in it (asked in #secret, so her answer may show it), and
    everything landed on the remote."""
    a = await archived_server(world, cdn, extra=3)
    before = {q: await found(world, a.alice, q, a.secret) for q in QUERIES}
    assert await world.archive.worker.drain(30)
    return a, before


async def catalogue_lost(world: World) -> Path:
    """Helix stops and its catalogue is lost with the volume."""
    await world.capture.close()
    db = world.capture.catalogue.db_path
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


async def restarted_on_a_fresh_volume(world: World) -> HelixBot:
    """Helix stops, its catalogue is lost with the volume, and it starts again on the same archive."""
    await catalogue_lost(world)
    return await started_again(world)


async def started_again(world: World) -> HelixBot:
    """Helix starts on the same volume and archive (its capture closed before)."""
    await world.capture.start()
    return await connected_again(world)


async def connected_again(world: World) -> HelixBot:
    """A new bot connects to Discord with the capture already started."""
    bot = HelixBot(world.bot.settings, world.archive, capture=world.capture)
    bot.owner_ids = world.bot.owner_ids
    await world.env.restart_bot(bot)
    world.bot = bot
    return bot


def held_after_one_segment(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """A slow remote: the next rebuild reads one segment, then waits until the test lets it go on.
    Returns (reached: it is waiting, go_on: set it to let the rebuild finish)."""
    monkeypatch.setattr("capture.rebuild.FIRST_BATCH_LINES", 1)  # a batch per segment
    monkeypatch.setattr("capture.rebuild.BATCH_LINES", 1)
    cat = world.capture.catalogue
    call, batches, reached, go_on = cat.call, [], asyncio.Event(), asyncio.Event()

    async def a_slow_remote(name: str, *args, **kwargs):
        if name == "restore_segments":
            batches.append(args)
            if len(batches) == 2:
                reached.set()
                await world.env.external_wait(go_on.wait(), reason="a remote the test holds back")
        return await call(name, *args, **kwargs)

    monkeypatch.setattr(cat, "call", a_slow_remote)
    return reached, go_on


async def test_a_deleted_catalogue_is_rebuilt_at_start_and_finds_the_same(data_dir: Path, cdn: LocalCdn):  # noqa: F811
    settings = bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))
    async with simulated_guild(settings) as world:
        a, before = await searched_archive(world, cdn)
        assert all(before.values()) and await found(world, a.bob, "code") == []

        bot = await restarted_on_a_fresh_volume(world)
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state in ("done", "failed"), 60, "the start-up rebuild")
        assert cog.progress.state == "done" and cog.progress.segments_done >= 2, cog.progress
        assert {q: await found(world, a.alice, q, a.secret) for q in QUERIES} == before
        assert await found(world, a.bob, "code") == []  # visibility still holds on the rebuilt catalogue
        # the rebuilt catalogue knows no backup, but its messages: a backup finds it up to date, not empty
        since = len(world.env.http_requests)
        await world.say(world.owner, f"!backup <#{a.general.id}>")
        await wait_until(lambda: "✅" in last_edit(world, since), 60, "the backup's last answer")
        assert last_edit(world, since) == f"✅ <#{a.general.id}> is up to date: nothing new since the last backup."
        status = await world.say(world.owner, "!status")
        assert any(re.search(r"rebuilt from the archive remote: \d+ archive files read, \d+ new messages, edits or "
                             r"deletions$", line) for line in status), status

        # !reindex on a full catalogue adds nothing, and rebuilding wrote nothing back to the remote
        root = Path(world.archive.settings.archive_dir)
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        said = await world.say(world.owner, "!reindex")
        assert [line for line in said if " › " in line] == [
            "  helix › Rebuilding the catalogue from the archive remote…"], said
        assert re.fullmatch(r"  helix ✎ Catalogue rebuilt from the archive remote: \d+ archive files read, 0 new "
                            r"messages, edits or deletions\.", said[-1]), said  # the same reply, edited
        assert await world.archive.worker.drain(30)
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == files
        refused = await world.say(a.bob, "!reindex")
        assert any("Only the bot's owner" in line for line in refused), refused
        assert world.env.errors  # that refusal was expected: reading the errors tells SimCord so
        lines = [line for seg in root.glob(f"discord/{world.guild.id}/*/messages/*.jsonl") for line in read_lines(seg)]
        stats = await world.capture.catalogue.call("stats")
        assert stats.messages == len({line["id"] for line in lines}) and stats.unflushed == 0


async def test_a_rebuild_cut_short_by_a_deploy_is_finished_at_the_next_start(data_dir: Path, cdn: LocalCdn,  # noqa: F811
                                                                             monkeypatch: pytest.MonkeyPatch):
    settings = bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))
    async with simulated_guild(settings) as world:
        a, before = await searched_archive(world, cdn)

        # The volume is lost, and the rebuild at the next start is stopped by a deploy after one segment.
        db = await catalogue_lost(world)
        monkeypatch.setattr("capture.rebuild.FIRST_BATCH_LINES", 1)  # a batch per segment
        monkeypatch.setattr("capture.rebuild.BATCH_LINES", 1)
        progress, stopped = RebuildProgress(), asyncio.Event()
        async with Catalogue(db.parent) as cat:
            call = cat.call

            async def deploy_after_one_segment(name: str, *args):
                if name == "restore_segments" and progress.segments_done == 1:
                    stopped.set()
                    await asyncio.Event().wait()  # the deploy stops Helix here
                return await call(name, *args)

            monkeypatch.setattr(cat, "call", deploy_after_one_segment)
            task = asyncio.create_task(rebuild(cat, world.archive.service, data_dir, progress))
            await asyncio.wait_for(stopped.wait(), 30)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            partial = (await call("stats")).messages
        assert progress.segments_total >= 2 and 0 < partial

        # Helix starts again: the catalogue is not empty, and it is still rebuilt, from where it stopped.
        bot = await started_again(world)
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state in ("done", "failed"), 60, "the start-up rebuild")
        assert cog.progress.state == "done" and 0 < cog.progress.lines_added, cog.progress
        assert {q: await found(world, a.alice, q, a.secret) for q in QUERIES} == before
        root = Path(world.archive.settings.archive_dir)
        lines = [line for seg in root.glob(f"discord/{world.guild.id}/*/messages/*.jsonl") for line in read_lines(seg)]
        assert (await world.capture.catalogue.call("stats")).messages == len({line["id"] for line in lines}) > partial

        # A whole rebuild is not run again at the start after.
        await world.capture.close()
        bot = await started_again(world)
        await asyncio.sleep(0)
        assert bot.get_cog("Reindex").progress.state == "idle"
        assert await world.capture.catalogue.call("rebuild_reason") is None


async def test_members_asking_during_a_rebuild_are_told_it_is_not_finished(data_dir: Path, cdn: LocalCdn,  # noqa: F811
                                                                          monkeypatch: pytest.MonkeyPatch):
    settings = bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))
    async with simulated_guild(settings) as world:
        a, before = await searched_archive(world, cdn)

        # A fresh volume: the start-up rebuild has read one segment of several when members ask.
        reached, go_on = held_after_one_segment(world, monkeypatch)
        bot = await restarted_on_a_fresh_volume(world)
        await asyncio.wait_for(reached.wait(), 30)
        note = "still being rebuilt from the archive (1/"
        for asked in ("!find launch", "!archives"):
            said = " ".join(await world.say(a.alice, asked))
            assert note in said, (asked, said)
        for asked in ("!find nothingmatchesthis", "!get 999999999999999999"):
            said = " ".join(await world.say(a.alice, asked))
            assert note in said and "try again once it is done" in said, (asked, said)

        go_on.set()
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state in ("done", "failed"), 60, "the start-up rebuild")
        assert {q: await found(world, a.alice, q, a.secret) for q in QUERIES} == before
        for asked in ("!find launch", "!archives"):
            said = " ".join(await world.say(a.alice, asked))
            assert "rebuilt" not in said, (asked, said)


def held_before_the_channels(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """A remote that is not a local folder, and slow: the next rebuild copies the archive before it reads
    the channels, and waits there until the test lets it go on. Returns (reached, go_on)."""
    cat, reached, go_on = world.capture.catalogue, asyncio.Event(), asyncio.Event()
    call = cat.call

    async def still_copying(name: str, *args, **kwargs):
        if name == "restore_channels":
            reached.set()
            await world.env.external_wait(go_on.wait(), reason="a remote the test holds back")
        return await call(name, *args, **kwargs)

    monkeypatch.setattr(cat, "call", still_copying)
    return reached, go_on


async def rebuilding_after_a_lost_volume(world: World, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                         ) -> tuple[Archived, HelixBot, asyncio.Event]:
    """A server archived, then Helix started again on a fresh volume, its rebuild held before it has
    read a channel (``held_before_the_channels``). Returns (the server, the bot, set it to go on)."""
    a = await archived_server(world, cdn, extra=3)
    assert await world.archive.worker.drain(30)
    reached, go_on = held_before_the_channels(world, monkeypatch)
    bot = await restarted_on_a_fresh_volume(world)
    await asyncio.wait_for(reached.wait(), 30)
    return a, bot, go_on


async def test_what_members_delete_or_edit_during_a_rebuild_is_followed_once_it_ends(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    async with simulated_guild(bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))) as world:
        a, bot, go_on = await rebuilding_after_a_lost_volume(world, cdn, monkeypatch)
        world.env.backend.delete_message(a.general.id, a.ids["launch"])  # in a segment not read yet
        world.env.backend.edit_message(a.general.id, a.ids["minutes"], {"content": "minutes, corrected"})
        await world.env.settle()
        said = " ".join(await world.say(world.owner, f"!backup <#{a.general.id}>"))
        assert "Backing up" in said, said
        said = " ".join(await world.say(world.owner, f"!backup cancel <#{a.general.id}>"))
        assert "Cancelled" in said, said
        go_on.set()
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state == "done", 60, "the start-up rebuild")
        await wait_until(lambda: _deleted(world, a.ids["launch"]), 30, "the deletion is followed")
        assert await world.capture.catalogue.call("search", "rocket") == []
        await wait_until(lambda: _content(world, a.ids["minutes"], "minutes, corrected"), 30, "the edit is followed")
        rows = [r for r in await world.capture.catalogue.call("backups", limit=10) if r.channel_id == a.general.id]
        assert [r.state for r in rows] == ["cancelled"], rows


async def _content(world: World, message_id: int, content: str) -> bool:
    record = await world.capture.catalogue.call("message", message_id)
    return record is not None and record.get("content") == content


async def _deleted(world: World, message_id: int) -> bool:
    record = await world.capture.catalogue.call("message", message_id)
    return record is None or record.get("type") == "tombstone"


async def test_a_backup_asked_for_during_a_rebuild_waits_for_it_and_archives_nothing_twice(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    async with simulated_guild(bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))) as world:
        a, bot, go_on = await rebuilding_after_a_lost_volume(world, cdn, monkeypatch)
        newer = world.env.backend.create_message(a.general.id, a.bob.id, "posted after the backup", broadcast=False)

        # The owner backs #general up while the catalogue does not know yet what the archive holds.
        since = len(world.env.http_requests)
        await world.say(world.owner, f"!backup <#{a.general.id}>")
        await wait_until(lambda: "waits: the catalogue is being rebuilt from the archive" in last_edit(world, since),
                         30, lambda: f"the backup says it waits: {last_edit(world, since)}")
        # A deploy's stop flushes what is committed: the remote's manifest must not be replaced by the
        # little the catalogue knows of the channel so far.
        manifest = Path(world.archive.settings.archive_dir) / f"discord/{world.guild.id}/{a.general.id}/channel.json"
        listed = json.loads(manifest.read_text())["segments"]
        await world.capture.flush_all()
        assert await world.archive.worker.drain(30)
        assert json.loads(manifest.read_text())["segments"] == listed != []
        go_on.set()
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state in ("done", "failed"), 60, "the start-up rebuild")
        row = await backup_finished(world, a.general.id)  # the first the new volume's catalogue knows of
        assert row.state == "done" and row.archived == 1, row
        root = Path(world.archive.settings.archive_dir)
        ids = [line["id"] for seg in root.glob(f"discord/{world.guild.id}/{a.general.id}/messages/*.jsonl")
               for line in read_lines(seg)]
        assert sorted(ids) == sorted({*map(str, a.ids.values()), str(newer.id)} - {str(a.ids["code"])}), ids


async def test_a_message_archived_during_a_rebuild_waits_for_it_and_is_on_the_remote_once(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    async with simulated_guild(bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))) as world:
        a, bot, go_on = await rebuilding_after_a_lost_volume(world, cdn, monkeypatch)
        link = f"https://discord.com/channels/{world.guild.id}/{a.general.id}/{a.ids['minutes']}"
        since = len(world.env.http_requests)
        # Archived once already, in a segment the rebuild has not read yet.
        world.env.backend.create_message(a.general.id, world.owner.id, f"!archive {link}")
        await wait_until(lambda: [m for m in answers(world, since) if "waits" in (m.get("content") or "")]
                         or "waits" in last_edit(world, since), 30,
                         lambda: f"the answer says it waits: {bot_messages(world, since)}")
        go_on.set()
        await wait_until(lambda: "Archived" in last_edit(world, since) or "archived" in last_edit(world, since), 60,
                         lambda: f"the message archived after the rebuild: {bot_messages(world, since)}")
        assert await world.archive.worker.drain(30)
        root = Path(world.archive.settings.archive_dir)
        ids = [line["id"] for seg in root.glob(f"discord/{world.guild.id}/{a.general.id}/messages/*.jsonl")
               for line in read_lines(seg)]
        assert ids.count(str(a.ids["minutes"])) == 1, ids


async def test_a_rebuild_that_found_the_remote_down_at_start_is_tried_again(data_dir: Path, webdav, cdn):  # noqa: F811
    sync = webdav.settings(data_dir, retries=1, retry_base_s=0.05, low_level_retries=1)
    async with simulated_guild(bot_settings(sync)) as world:
        a, before = await searched_archive(world, cdn)
        await catalogue_lost(world)
        webdav.stop()  # a deploy lands while the archive's server is down
        bot = await started_again(world)
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.retry_at is not None, 120, "a retry is planned")
        status = " ".join(await world.say(world.owner, "!status"))
        assert "rebuild failed" in status and "Helix tries again in 30 s" in status, status

        webdav.start()
        await world.env.advance_time(31)
        await wait_until(lambda: cog.progress.state == "done", 60, lambda: f"the retry: {cog.progress}")
        assert {q: await found(world, a.alice, q, a.secret) for q in QUERIES} == before


async def test_a_rebuild_is_tried_again_for_as_long_as_the_remote_stays_down(data_dir: Path, webdav, cdn):  # noqa: F811
    sync = webdav.settings(data_dir, retries=1, retry_base_s=0.05, low_level_retries=1)
    async with simulated_guild(bot_settings(sync)) as world:
        a, before = await searched_archive(world, cdn)
        await catalogue_lost(world)
        webdav.stop()  # down for longer than any number of tries an owner would pick
        bot = await started_again(world)
        cog = bot.get_cog("Reindex")
        waits: list[int] = []
        planned = None
        for _ in range(7):
            await wait_until(lambda before=planned: cog.progress.retry_at not in (None, before), 120,
                             lambda: f"try {len(waits) + 1}")
            planned = cog.progress.retry_at
            waits.append(round(planned - time.time()))
            await world.env.advance_time(waits[-1] + 1)
        assert waits[:2] == [30, 60] and waits[-2:] == [960, 960], waits
        status = " ".join(await world.say(world.owner, "!status"))
        assert "rebuild failed" in status and "Helix tries again in 16 min" in status, status

        webdav.start()
        await world.env.advance_time(961)
        await wait_until(lambda: cog.progress.state == "done", 60, lambda: f"the retry: {cog.progress}")
        assert {q: await found(world, a.alice, q, a.secret) for q in QUERIES} == before


def write_segments(root: Path, segments: list[tuple], gzipped: int = 0) -> None:
    """The segments and channel manifests as the remote holds them (the manifests list the segments
    in the order they were written); the first ``gzipped`` as ``.jsonl.gz``."""
    written: dict[tuple[int, int], list[dict]] = {}
    for i, (guild, channel, rel, _, lines, _, _) in enumerate(segments):
        text = "".join(f"{line}\n" for line in lines).encode()
        path = root / (f"{rel}.gz" if i < gzipped else rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(text) if i < gzipped else text)
        written.setdefault((guild, channel), []).append({"path": rel})
    for (guild, channel), listed in written.items():
        manifest = {"format": 1, "guild_id": str(guild), "cursor": "0", "watched": False, "segments": listed,
                    "channel": {"id": str(channel), "name": f"c{channel}", "topic": None, "type": "text"}}
        (root / f"discord/{guild}/{channel}/channel.json").write_text(json.dumps(manifest))


async def test_an_archive_on_webdav_is_rebuilt_as_one_in_a_local_folder(tmp_path: Path, webdav):  # noqa: F811
    segments = await captured(tmp_path / "live")
    local = SyncSettings(data_dir=tmp_path / "local", retries=1, retry_base_s=0.05)
    write_segments(Path(local.archive_dir), segments)
    write_segments(webdav.storage, segments, gzipped=1)
    for settings, name in ((local, "from-local"), (webdav.settings(tmp_path / "webdav-data"), "from-webdav")):
        async with SyncService(settings) as svc, Catalogue(tmp_path / name) as cat:
            progress = await rebuild(cat, svc, tmp_path / "scratch")
            assert progress.state == "done" and progress.lines_added == sum(len(s[4]) for s in segments), progress
            # 100's edit is in a later segment ("100-103") whose name sorts before its own ("100-104").
            assert await cat.call("search", "annual") == [100] and await cat.call("search", "quarterly") == []
    assert not list((tmp_path / "scratch").glob("*"))  # the copy the WebDAV rebuild read is gone
    assert dump(tmp_path / "from-webdav") == dump(tmp_path / "from-local")
    assert Path(local.archive_dir, segments[0][2]).exists()  # the local archive was read where it is, not moved


async def test_a_long_reindex_edits_its_reply_with_how_far_it_got(data_dir: Path, cdn: LocalCdn,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch):
    settings = bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))
    async with simulated_guild(settings) as world:
        await searched_archive(world, cdn)
        _, go_on = held_after_one_segment(world, monkeypatch)
        since = len(world.env.http_requests)
        said = await world.say(world.owner, "!reindex")
        assert said == ["  helix › Rebuilding the catalogue from the archive remote…"], said
        await world.env.advance_time(3)
        edited = world.render()
        assert any(re.search(r"✎ Rebuilding the catalogue from the archive remote: 1/\d+ archive files read…", line)
                   for line in edited), edited
        go_on.set()
        await wait_until(lambda: any("Catalogue rebuilt" in line for line in world.render()), 30, "the reindex")
        # the result is the last edit of that one reply: no stale "Rebuilding…" is left above a second message
        assert len(answers(world, since)) == 1, answers(world, since)
        reply = world.channel.last_message
        assert re.fullmatch(r"Catalogue rebuilt from the archive remote: \d+ archive files read, \d+ new messages, "
                            r"edits or deletions\.", reply.content), reply.content


async def test_a_segment_missing_from_the_remote_is_fetched_again_by_the_next_backup(data_dir: Path,
                                                                                   cdn: LocalCdn):  # noqa: F811
    """channel.json lists a segment the remote does not hold (its upload was lost with the volume, or
    someone deleted it): the rebuilt cursor stays below it, so the next backup brings its messages back."""
    settings = bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05),
                            capture=CaptureSettings(segment_records=2))
    async with simulated_guild(settings) as world:
        a = await archived_server(world, cdn)
        assert await world.archive.worker.drain(30)
        root = Path(world.archive.settings.archive_dir)
        folder = root / f"discord/{world.guild.id}/{a.general.id}"
        listed = json.loads((folder / "channel.json").read_text())["segments"]
        assert len(listed) >= 2, listed
        lost = root / listed[0]["path"]
        gone = {line["id"] for line in read_lines(lost) if line.get("type", "message") == "message"}
        assert str(a.ids["launch"]) in gone
        lost.unlink()

        bot = await restarted_on_a_fresh_volume(world)
        cog = bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state in ("done", "failed"), 60, "the start-up rebuild")
        assert str(a.ids["launch"]) not in await found(world, a.alice, "launch")  # lost with its segment, for now
        since = len(world.env.http_requests)
        await world.say(world.owner, f"!backup <#{a.general.id}>")
        await wait_until(lambda: "✅" in last_edit(world, since), 60, "the backup's last answer")
        assert f"{len(gone)} new" in last_edit(world, since), last_edit(world, since)
        assert str(a.ids["launch"]) in await found(world, a.alice, "launch")
        assert await world.archive.worker.drain(30)
        held = [line["id"] for seg in folder.glob("messages/*.jsonl") for line in read_lines(seg)
                if line.get("type", "message") == "message"]
        assert gone <= set(held) and len(held) == len(set(held)), held

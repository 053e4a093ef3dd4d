"""An owner who sends ``!reindex`` twice in a row gets one rebuild: the second is told one runs."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
import structlog

from bot.replies import answer
from bot.sim.world import World, simulated_guild
from sync import SyncSettings
from tests.capture.test_rebuild import held_after_one_segment, searched_archive
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until
from tests.support.world import answers, bot_settings


def discord_slow_to_take_the_first_reply(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord takes its time over ``!reindex``'s first reply: it lands only once Helix has read the
    second ``!reindex`` and answers that one too. SimCord's in-memory Discord answers at once, so
    without this the second command would only ever be read after the first reply is back."""
    replies, second = [], asyncio.Event()

    async def slow(ctx, content=None, **kwargs):
        replies.append(content)
        if len(replies) == 1:
            await world.env.external_wait(second.wait(), reason="Discord slow to take a reply")
        else:
            second.set()
        return await answer(ctx, content, **kwargs)

    cog = world.bot.get_cog("Reindex")
    monkeypatch.setattr(sys.modules[type(cog).__module__], "answer", slow)  # the module the bot loaded


async def test_a_second_reindex_sent_before_the_first_is_answered_is_told_one_is_running(
        data_dir: Path, cdn: LocalCdn, monkeypatch: pytest.MonkeyPatch):
    settings = bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))
    async with simulated_guild(settings) as world:
        await searched_archive(world, cdn)
        _, go_on = held_after_one_segment(world, monkeypatch)
        discord_slow_to_take_the_first_reply(world, monkeypatch)
        since = len(world.env.http_requests)
        with structlog.testing.capture_logs() as logs:
            # Enter pressed twice: Discord delivers both messages before Helix has answered the first.
            for _ in range(2):
                world.env.backend.create_message(world.channel.id, world.owner.id, "!reindex")
            await world.env.settle()
            said = sorted(m["content"] for m in answers(world, since))
            assert len(said) == 2 and said[1] == "Rebuilding the catalogue from the archive remote…", said
            assert re.fullmatch(r"A rebuild is already running \(rebuilding from the archive remote: \d+/\d+ "
                                r"archive files read\): see `!status`\.", said[0]), said
            go_on.set()
            await wait_until(lambda: any("Catalogue rebuilt" in line for line in world.render()), 30, "the reindex")
        assert [e["event"] for e in logs if e["event"].startswith("rebuild_")] == ["rebuild_done"], logs
        assert re.fullmatch(r"Catalogue rebuilt from the archive remote: \d+ archive files read, \d+ new messages, "
                            r"edits or deletions\.", world.channel.last_message.content)
        assert not world.env.errors


async def test_a_failed_reindex_during_an_outage_leaves_helix_retrying_by_itself(nosuch_world):
    """The start-up rebuild fails and is tried again by itself; an owner's !reindex that fails too must not
    end that: every backup and catch-up waits for a rebuild to end."""
    world = nosuch_world
    cog = world.bot.get_cog("Reindex")
    await wait_until(lambda: cog.progress.state == "failed" and cog.progress.retry_at, 5,
                     lambda: f"the start-up rebuild fails and is retried: {cog.progress}")
    assert cog._retry.is_running()
    said = await world.say(world.owner, "!reindex")  # the owner tries, while the remote is still down
    await wait_until(lambda: cog.progress.state == "failed", 5, "the owner's rebuild fails too")
    status = " ".join(await world.say(world.owner, "!status"))
    backups_told = cog.backups_wait_for
    assert cog._retry.is_running() and "tries again" in backups_told, (said, backups_told, status)
    assert "Helix tries again by itself" in said[-1], said

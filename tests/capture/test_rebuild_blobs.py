"""A catalogue rebuilt from the remote takes a file's bytes for archived only if the remote holds them:
bytes an edit removed, or that went missing, are uploaded again when someone posts them again, and a
saved file that needs them is fetched again by its channel's next backup."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bot.sim.world import simulated_guild
from tests.bot.test_threads_watch import watch_settings
from tests.bot.test_watch_removed_files import posted_with_files, revisions
from tests.capture.test_rebuild import restarted_on_a_fresh_volume
from tests.capture.test_rebuild_cursor import rebuilt
from tests.support.capture import blob_files, cdn, storage  # noqa: F401
from tests.support.cdn import LocalCdn
from tests.support.waiting import wait_until


async def test_bytes_the_remote_lost_are_uploaded_and_fetched_again_after_a_rebuild(data_dir: Path,
                                                                                    cdn: LocalCdn):  # noqa: F811
    async with simulated_guild(watch_settings(data_dir)) as world:
        general, mine, meme = await posted_with_files(world, cdn)
        env, be, bob = world.env, world.env.backend, world.member("bob")
        meme_sha = hashlib.sha256(meme).hexdigest()
        [card_sha] = set(blob_files(storage(world))) - {meme_sha}
        card_bytes = blob_files(storage(world))[card_sha].read_bytes()
        meme_file = be.messages[general.id][mine.id].attachments[1]
        be.edit_message(general.id, mine.id, {"attachments": [meme_file]})  # alice takes her ID card back
        await env.settle()
        await wait_until(lambda: revisions(world, general.id) or None, 30, "the edit is a revision")
        await wait_until(lambda: set(blob_files(storage(world))) == {meme_sha}, 30, "the card's bytes left")
        blob_files(storage(world))[meme_sha].unlink()  # and the meme's are lost from the remote

        await rebuilt(await restarted_on_a_fresh_volume(world))
        # bob posts the same ID card picture: its bytes are not on the remote, so they are uploaded
        be.create_message(general.id, bob.id, "is this yours?", attachments=[
            cdn.attachment(env, general.id, "found-card.png", card_bytes)])
        await env.settle()
        await wait_until(lambda: card_sha in blob_files(storage(world)), 30, "the card's bytes landed again")
        # the meme both messages still show is fetched again from Discord
        await world.say(world.owner, f"!backup <#{general.id}>")
        await wait_until(lambda: meme_sha in blob_files(storage(world)), 30, "the meme's bytes fetched again")

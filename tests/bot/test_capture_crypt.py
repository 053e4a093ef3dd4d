"""Encryption at rest: an rclone crypt remote wrapping the loopback WebDAV server, set by RCLONE_CONFIG_* only.

The server's disk holds no plaintext name or content of what was archived, while Helix reads an
archived attachment back byte-identical through the crypt remote.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from bot.sim.world import World, simulated_guild
from tests.support.capture import backup_finished, cdn  # noqa: F401
from tests.support.remotes import LoopbackRemote, obscure
from tests.support.waiting import wait_until
from tests.support.world import answers, bot_settings, hosted_world


@pytest_asyncio.fixture
async def sealed_world(webdav: LoopbackRemote, data_dir: Path) -> AsyncIterator[World]:
    base = webdav.settings(data_dir)
    crypt = {"RCLONE_CONFIG_SEALED_TYPE": "crypt",
             "RCLONE_CONFIG_SEALED_REMOTE": f"{webdav.archive.rstrip('/')}/sealed",
             "RCLONE_CONFIG_SEALED_PASSWORD": obscure("correct horse battery"),
             "RCLONE_CONFIG_SEALED_PASSWORD2": obscure("staple salt")}
    sync = replace(base, archive="sealed:", extra_env={**base.extra_env, **crypt})
    async for world in hosted_world(bot_settings(sync)):
        world.server_root = webdav.storage  # type: ignore[attr-defined]
        yield world


async def test_the_server_holds_only_ciphertext(sealed_world, cdn, tmp_path):  # noqa: F811
    world = sealed_world
    env = world.env
    alice = world.member("alice")
    secret_words = "the launch code is 0000 tangerine"
    payload = b"TOP-SECRET-PAYLOAD " * 200 + os.urandom(64)
    msg = env.backend.create_message(world.channel.id, alice.id, secret_words, attachments=[
        cdn.attachment(env, world.channel.id, "plans-for-tangerine.pdf", payload, "application/pdf")])
    await env.settle()
    target = await world.bot.get_channel(world.channel.id).fetch_message(msg.id)
    since = len(env.http_requests)
    await world.owner.send(world.channel, "!archive", reply_to=target)
    assert len(answers(world, since)) == 1  # one answer, edited to say where it landed
    reply = world.channel.last_message.content
    assert "with 1 file" in reply, reply
    assert await world.archive.worker.drain(60)

    sha = hashlib.sha256(payload).hexdigest()
    server_files = [p for p in world.server_root.rglob("*") if p.is_file()]
    assert len(server_files) >= 4  # blob, segment, transcript, channel.json
    for path in server_files:
        name = path.relative_to(world.server_root).as_posix()
        for plain in (sha[:16], "discord", "blobs", "sha256", "messages", "transcript", "channel", "tangerine",
                      ".jsonl"):
            assert plain not in name.removeprefix("sealed/"), f"plaintext name on the server: {name}"
        data = path.read_bytes()
        assert b"TOP-SECRET" not in data and b"tangerine" not in data and str(msg.id).encode() not in data

    record = await world.capture.catalogue.call("message", msg.id)
    blob = record["attachments"][0]["blob"]
    back = await world.archive.service.fetch(blob, tmp_path / "back.bin")
    assert back.read_bytes() == payload


@pytest.mark.parametrize("names", [{}, {"FILENAME_ENCRYPTION": "obfuscate"}, {"DIRECTORY_NAME_ENCRYPTION": "false"},
                                   {"FILENAME_ENCRYPTION": "off"}], ids=["standard", "obfuscated", "plain-folders",
                                                                         "not-encrypted"])
async def test_a_new_volume_with_the_wrong_crypt_password_starts_no_second_archive(webdav: LoopbackRemote,
                                                                                   data_dir: Path, cdn,  # noqa: F811
                                                                                   names: dict[str, str]):
    """Rebuilding through the wrong key fails, saying so, and the backups wait: however the crypt stores
    names (with folder names stored plain, the wrong key still lists the `discord` folder)."""
    base = webdav.settings(data_dir, retries=1, retry_base_s=0.05)
    crypt = {"RCLONE_CONFIG_SEALED_TYPE": "crypt",
             "RCLONE_CONFIG_SEALED_REMOTE": f"{webdav.archive.rstrip('/')}/sealed",
             **{f"RCLONE_CONFIG_SEALED_{k}": v for k, v in names.items()}}
    right = {**crypt, "RCLONE_CONFIG_SEALED_PASSWORD": obscure("correct horse battery")}
    async with simulated_guild(bot_settings(replace(base, archive="sealed:", extra_env={**base.extra_env, **right}))) \
            as world:
        general = world.guild.create_text_channel("general")
        world.env.backend.create_message(general.id, world.member("alice").id, "hello", broadcast=False)
        await world.env.settle()
        await world.say(world.owner, f"!backup <#{general.id}>")
        await backup_finished(world, general.id)
    stored = sorted(p.relative_to(webdav.storage) for p in webdav.storage.rglob("*"))

    wrong = {**crypt, "RCLONE_CONFIG_SEALED_PASSWORD": obscure("wrong horse")}
    (data_dir / "catalogue.sqlite3").unlink()  # a new volume: the catalogue is rebuilt from the archive
    async with simulated_guild(bot_settings(replace(base, archive="sealed:", extra_env={**base.extra_env, **wrong}))) \
            as world:
        cog = world.bot.get_cog("Reindex")
        await wait_until(lambda: cog.progress.state == "failed", 60, lambda: f"the rebuild: {cog.progress}")
        assert "RCLONE_CONFIG_SEALED_PASSWORD" in (cog.progress.error or ""), cog.progress.error
        assert "wrong horse" not in (cog.progress.error or "")
        general = world.guild.create_text_channel("general")
        world.env.backend.create_message(general.id, world.member("alice").id, "hello", broadcast=False)
        await world.env.settle()
        said = " ".join(await world.say(world.owner, f"!backup <#{general.id}>"))
        await wait_until(lambda: "waits" in world.channel.last_message.content, 30,
                         lambda: f"the backup waits: {said} / {world.channel.last_message.content}")
        await world.capture.flush_all()
        assert await world.archive.worker.drain(30)
    assert sorted(p.relative_to(webdav.storage) for p in webdav.storage.rglob("*")) == stored

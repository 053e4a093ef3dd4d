"""Every command, typed as a prefix command and as a slash command, in a simulated guild.

The bot is the real HelixBot under SimCord; the archive is real rclone writing to a local folder
(the embedded default) or to a password-protected WebDAV server on 127.0.0.1. What is checked is
what a user sees (replies, embeds, edits, the posted image) and what lands on the remote.
"""

from __future__ import annotations

import hashlib
import re

from bot import __version__
from bot.sim.world import World
from tests.support.remotes import LoopbackRemote
from tests.support.world import (
    answers,
    bot_messages,
    check_ritual_pair,
    drained,
    outbox_counts,
)


async def one_answer(world: World, who, text: str) -> dict:
    """``who`` types ``text``; the bot answers exactly once (a slash command may say 'thinking…' first)."""
    since = len(world.env.http_requests)
    await world.say(who, text)
    replies = answers(world, since)
    assert len(replies) == 1, f"{text!r} got {len(replies)} answers: {replies}"
    return replies[0]


def fields(embed: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


# -- !status -------------------------------------------------------------------------------------


async def test_status_shows_the_remote_and_its_backend_but_never_its_password(
        webdav_world: World, webdav: LoopbackRemote) -> None:
    world = webdav_world
    alice = world.member("alice")

    for text in ("!status", "/status"):
        [embed] = (await one_answer(world, alice, text))["embeds"]

        assert embed["title"] == "Helix status", text
        info = fields(embed)
        assert info["Version"] == __version__
        assert re.fullmatch(r"\d+\.\d s|\d+s|\d+m \d+s", info["Uptime"]), info["Uptime"]
        assert re.fullmatch(r"\d+ ms|n/a", info["Gateway latency"]), info["Gateway latency"]
        assert info["Archive remote"] == "`loop:` (webdav)"
        assert info["Remote health"] == "ok"
        assert re.fullmatch(r"\d+\.\d+\.\d+", info["rclone"]), info["rclone"]
        assert info["Outbox"] == "0 pending, 0 failed"
        assert info["Last archive"] == "none since start"
        assert info["Last heartbeat"] == "none yet"
        assert re.fullmatch(r"\d+ MB", info["Memory"]), info["Memory"]

    everything = repr(bot_messages(world))
    for secret in (webdav.password, webdav.env()["RCLONE_CONFIG_LOOP_PASS"]):
        assert secret not in everything


# -- !heartbeat ----------------------------------------------------------------------------------


async def test_heartbeat_answers_at_once_with_latency_loop_lag_and_uptime(local_world: World) -> None:
    world = local_world
    alice = world.member("alice")

    for text in ("!heartbeat", "/heartbeat"):
        since = len(world.env.http_requests)
        reply = await one_answer(world, alice, text)

        assert re.fullmatch(r"💓 alive · gateway (\d+ ms|n/a) · loop lag \d+\.\d ms · up .+ · "
                            r"last periodic heartbeat: none yet", reply["content"]), reply["content"]
        assert len(world.env.http_requests) - since == 1, f"{text} answers at once: no 'thinking…', no edit"


# -- !testmega -----------------------------------------------------------------------------------


async def test_admin_runs_testmega_and_sees_every_step_timed(webdav_world: World, webdav: LoopbackRemote) -> None:
    world = webdav_world

    for text in ("!testmega", "!testremote", "/testmega"):
        [embed] = (await one_answer(world, world.owner, text))["embeds"]

        assert embed["title"] == "Archive round trip ok", text
        assert embed["description"] == "remote `loop:`"
        steps = fields(embed)
        assert list(steps) == ["✅ write", "✅ upload", "✅ list", "✅ read back", "✅ compare", "✅ delete"]
        assert all(re.fullmatch(r"\d+ ms", v) for v in steps.values()), steps
        assert re.fullmatch(r"total \d+ ms", embed["footer"]["text"])
        assert not webdav.has("**/*"), f"the probe left files behind: {webdav.files()}"


# -- !ritual -------------------------------------------------------------------------------------


async def test_ritual_by_prefix_and_slash_posts_the_image_and_edits_its_message_to_say_where_it_landed(
        archive_world: World) -> None:
    world = archive_world
    landed = []

    for who, text, steps in (("alice", "!ritual 108", 108), ("bob", "/ritual steps:7", 7)):
        since = len(world.env.http_requests)
        await world.say(world.member(who), text)
        await drained(world)

        # One message, posted with the image, then edited in place until it says where the files are.
        [posted] = answers(world, since)
        assert posted["content"].startswith(f"🌀 **Ritual of {steps} steps** · "), posted["content"]
        assert re.search(r"📦 queued as #\d+ and #\d+ · archiving…", posted["content"])
        edits = [m for m in bot_messages(world, since) if m["method"] == "PATCH"]
        assert edits, f"{text}: the ritual message was never edited"
        final = edits[-1]["content"]
        match = re.search(r"✅ archived to (the local archive as )?`(?P<where>[^`]+\.png)` \(\+ manifest\) · .+ · "
                          r"took ", final)
        assert match, final
        message = world.channel.history()[-1]
        assert message.content == final and message.author.id == world.bot.user.id
        assert (message.interaction_metadata is not None) == text.startswith("/"), "a slash ritual answers it"

        # The posted image is the archived one; the archived one decodes and matches its manifest.
        [attachment] = message.attachments
        png_name = match["where"].rsplit("/", 1)[1]
        assert attachment.filename == png_name
        manifest = check_ritual_pair(world.storage, png_name, steps)
        assert hashlib.sha256(await attachment.read()).hexdigest() == manifest["png_sha256"]
        [png] = world.storage.glob(f"rituals/*/*/*/{png_name}")
        rel = png.relative_to(world.storage).as_posix()
        # Members are shown the remote's path, or for the local archive the path inside it: never the host's.
        local = world.archive.service.remote.root.is_local
        assert match["where"] == (rel if local else world.archive.service.remote_path(rel)), final
        landed.append(match["where"])

    assert await outbox_counts(world) == {"pending": 0, "uploading": 0, "failed": 0, "done": 4}
    info = fields((await one_answer(world, world.member("alice"), "!status"))["embeds"][0])
    assert info["Last archive"].startswith(f"`{landed[-1][:-4]}."), info["Last archive"]

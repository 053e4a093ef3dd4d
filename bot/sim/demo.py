"""``python -m bot demo``: the real bot, in a simulated guild, doing its main job end to end.

First the core: `!sync` (owner), `!status`, `!heartbeat`, `!testmega` (as an admin), `!ritual 108`
and `/ritual steps:7` as users would. Then what a community wants of it: members post in a public
channel and in a staff-only one, the owner backs both up, and members search, list and get back
what was archived, each seeing only what they may (Bob is not staff: the staff room's messages
never reach him). It prints the transcript as a Discord client would show it, then checks what
landed in the archive: every ritual's PNG and manifest exist and the PNG matches the manifest's
SHA-256, and every answer held what it should. Exit 0 only if every step succeeded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import discord

from bot.settings import Settings
from bot.sim.transcript import as_seen
from bot.sim.world import World, simulated_guild
from sync import SyncError

# Who types what, and a phrase the answer must hold ("" when any success will do). ``{launch}``
# and ``{staff-room}`` are the ids of the first message posted in each, known once it is posted.
SCRIPT = (
    ("owner", "!sync", ""),
    ("alice", "!status", ""),
    ("alice", "!heartbeat", ""),
    ("owner", "!testmega", ""),
    ("alice", "!ritual 108", ""),
    ("bob", "/ritual steps:7", ""),
    ("owner", "!backup launch", "Backing up"),
    ("owner", "!backup staff-room", "Backing up"),
    ("alice", "!find launch", "The rocket **launch** is on Friday"),
    ("carol", "!find code", "`/find` searches them for you alone"),  # bob reads this channel too
    ("carol", "/find query:code", "the launch **code** is 4242"),
    ("bob", "/find query:code", "Nothing archived that you can read matches"),
    ("bob", "/archives", "#launch · 2 messages"),
    ("alice", "!get {launch}", "The rocket launch is on Friday"),
    ("bob", "/get message:{staff-room}", "I have no archived message"),
)
COMMUNITY = (  # channel, author, text: posted before the owner backs the channels up
    ("launch", "alice", "The rocket launch is on Friday, bring snacks"),
    ("launch", "bob", "lunch at noon, anyone?"),
    ("staff-room", "carol", "the launch code is 4242, keep it secret"),
)


def demo_settings(base: Settings, data_dir: Path) -> Settings:
    """The embedded defaults: a local archive folder in ``data_dir``, no health port, no timers."""
    return replace(base, health=False, heartbeat_minutes=0,
                   sync=replace(base.sync, data_dir=data_dir))


ALL_STATES = ("pending", "uploading", "done", "failed")


async def _verify(world: World, out, earlier: set[int]) -> list[str]:
    """Every ritual of this run landed; its PNG on the remote matches its manifest's SHA-256."""
    problems: list[str] = []
    drained = await world.archive.worker.drain(60)
    if not drained:
        problems.append("the outbox did not drain within 60 s")
    svc = world.archive.service
    items = [i for i in await world.archive.outbox.list(ALL_STATES, limit=10_000)
             if i.id not in earlier and i.kind == "ritual"]
    problems += [f"#{i.id} ({i.rel_path}) is {i.state}: {i.last_error}" for i in items if i.state != "done"]
    pngs = sorted(i.rel_path for i in items if i.rel_path.endswith(".png") and i.state == "done")
    if len(pngs) < 2:
        problems.append(f"expected 2 ritual images in the archive, found {len(pngs)}")
    with tempfile.TemporaryDirectory() as tmp:
        for png in pngs:
            manifest_rel = png[:-4] + ".json"
            try:
                local_png = await svc.fetch(png, Path(tmp) / "r.png")
                local_json = await svc.fetch(manifest_rel, Path(tmp) / "r.json")
            except SyncError as exc:
                problems.append(f"{png} could not be read back: {exc.hint}")
                continue
            manifest = json.loads(local_json.read_text())
            digest = hashlib.sha256(local_png.read_bytes()).hexdigest()
            ok = digest == manifest.get("png_sha256")
            out(f"  {'ok' if ok else 'MISMATCH'}  {svc.remote_path(png)}  sha256 {digest[:16]}…  "
                f"steps={manifest.get('steps')}")
            if not ok:
                problems.append(f"{png} does not match its manifest")
    return problems


async def run_demo(out=print, base: Settings | None = None, data_dir: Path | None = None) -> int:
    base = base or Settings.from_env()
    data_dir = data_dir or Path(base.sync.data_dir) / "demo"
    settings = demo_settings(base, data_dir)
    out("Helix demo: the real bot in a SimCord guild (no token, no network); archive: "
        f"{settings.sync.archive or str(settings.sync.archive_dir)}")
    carried = await asyncio.to_thread(_clean_demo_state, data_dir)
    out(f"(started from a clean demo state: removed the last run's {', '.join(carried)})\n" if carried else "")
    problems: list[str] = []
    try:
        problems = await _run_script(settings, out)
    except SyncError as exc:  # the archive could not start: a bad HELIX_ARCHIVE, no rclone, ...
        problems.append(exc.hint)
    if problems:
        out("\ndemo FAILED:\n" + "\n".join(f"  - {p}" for p in problems))
        return 1
    out(f"\ndemo ok: {len(SCRIPT)} commands answered; rituals and two channels archived under "
        f"{settings.sync.archive_dir}, searched and got back by who may see them")
    return 0


def _clean_demo_state(data_dir: Path) -> list[str]:
    """Forget what earlier demo runs left in the demo's own folder (outbox, files waiting), so this
    run's outcome is its own; the embedded archive folder is kept. Returns what was removed."""
    removed = []
    if data_dir.is_dir():
        for child in sorted(data_dir.iterdir()):
            if child.name == "archive":
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            removed.append(child.name)
    return removed


async def post_community(world: World) -> dict[str, int]:
    """Members post in #launch and in #staff-room, which only the Staff role (Carol) and the bot
    can open; Helix is not watching yet. Returns the posted messages' ids by channel name."""
    guild, backend = world.guild, world.env.backend
    staff = guild.create_role("Staff")
    me = world.bot.get_guild(guild.id).me
    channels = {"launch": guild.create_text_channel("launch"),
                "staff-room": guild.create_text_channel("staff-room", overwrites={
                    guild.default_role: discord.PermissionOverwrite(view_channel=False),
                    staff: discord.PermissionOverwrite(view_channel=True),
                    world.owner: discord.PermissionOverwrite(view_channel=True),  # who backs it up must read it
                    me: discord.PermissionOverwrite(view_channel=True)})}
    world.users["carol"] = guild.add_member(world.env.create_user("carol"), roles=[staff])
    ids: dict[str, int] = {}
    for where, who, text in COMMUNITY:
        posted = backend.create_message(channels[where].id, world.member(who).id, text, broadcast=False)
        ids.setdefault(where, posted.id)
    await world.env.settle()
    return ids


async def _backups_done(world: World, within_s: float = 60.0) -> list[str]:
    """Wait for every backup to finish and its files to land; what went wrong, if anything."""
    deadline = time.monotonic() + within_s
    rebuild = getattr(world.bot.get_cog("Reindex"), "progress", None)
    while True:
        rows = await world.capture.catalogue.call("backups", limit=100)  # type: ignore[union-attr]
        if all(r.state != "running" for r in rows) or time.monotonic() > deadline:
            break
        if rebuild is not None and rebuild.state == "failed":  # they wait for a rebuild that is not coming soon
            return [f"the backups wait for the catalogue's rebuild from the archive, which failed: {rebuild.error}"]
        await asyncio.sleep(0.05)
    problems = [f"the backup of channel {r.channel_id} is {r.state}: {r.error}" for r in rows if r.state != "done"]
    if not await world.archive.worker.drain(60):
        problems.append("the outbox did not drain within 60 s")
    return problems


async def _run_script(settings: Settings, out) -> list[str]:
    problems: list[str] = []
    async with simulated_guild(settings) as world:
        earlier = {i.id for i in await world.archive.outbox.list(ALL_STATES, limit=10_000)}
        ids: dict[str, int] = {}
        for who, template, expected in SCRIPT:
            if template.startswith("!backup") and not ids:
                out("(alice and bob post in #launch; carol, who is staff, in #staff-room, which bob cannot open)\n")
                ids = await post_community(world)
            text = template.format(**ids)
            actor = world.owner if who == "owner" else world.member(who)
            out(f"{who} › {text}")
            lines = await world.say(actor, text)
            if template.startswith("!backup"):
                problems += await _backups_done(world)
                lines += world.render()  # the reply's last edit: what the backup did
            names = world.names()
            lines = [as_seen(line, names) for line in lines]
            for line in lines or ["  (no answer)"]:
                out(line)
            out("")
            said = "\n".join(lines)
            if not lines:
                problems.append(f"{text} got no answer")
            elif any(marker in said for marker in ("❌", "went wrong", "FAILED", "not allowed")):
                problems.append(f"{text} did not succeed")
            elif expected not in said:
                problems.append(f"{text} did not answer with {expected!r}")
        out("archive check:")
        problems += await _verify(world, out, earlier)
    return list(dict.fromkeys(problems))  # one cause met by several steps is said once


def main() -> int:
    return asyncio.run(run_demo(lambda line: print(line, flush=True)))


if __name__ == "__main__":
    sys.exit(main())

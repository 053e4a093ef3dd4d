"""``python -m bot demo``: the real bot, in a simulated guild, doing its main job end to end.

Sends `!sync` (owner), `!status`, `!heartbeat`, `!testmega` (as an admin), `!ritual 108` and
`/ritual steps:7` as users would, prints the transcript, then checks what landed in the
archive: every ritual's PNG and manifest exist and the PNG matches the manifest's SHA-256.
Exit 0 only if every step succeeded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bot.settings import Settings
from bot.sim.world import World, simulated_guild
from sync import SyncError

SCRIPT = (
    ("owner", "!sync"),
    ("alice", "!status"),
    ("alice", "!heartbeat"),
    ("owner", "!testmega"),
    ("alice", "!ritual 108"),
    ("bob", "/ritual steps:7"),
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
    out(f"\ndemo ok: {len(SCRIPT)} commands answered, rituals archived and verified under {settings.sync.archive_dir}")
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


async def _run_script(settings: Settings, out) -> list[str]:
    problems: list[str] = []
    async with simulated_guild(settings) as world:
        earlier = {i.id for i in await world.archive.outbox.list(ALL_STATES, limit=10_000)}
        for who, text in SCRIPT:
            actor = world.owner if who == "owner" else world.member(who)
            out(f"{who} › {text}")
            lines = await world.say(actor, text)
            for line in lines or ["  (no answer)"]:
                out(line)
            out("")
            if not lines:
                problems.append(f"{text} got no answer")
            elif any(marker in "\n".join(lines) for marker in ("❌", "went wrong", "FAILED", "not allowed")):
                problems.append(f"{text} did not succeed")
        out("archive check:")
        problems += await _verify(world, out, earlier)
    return problems


def main() -> int:
    return asyncio.run(run_demo(lambda line: print(line, flush=True)))


if __name__ == "__main__":
    sys.exit(main())

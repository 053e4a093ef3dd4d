"""``python -m capture restore``: a channel's archive in a folder that opens offline, images and all."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from bot.sim.world import simulated_guild
from runtime.units import human_size
from sync import SyncSettings
from tests.support.archived import PHOTO, archived_server
from tests.support.browser import images_seen
from tests.support.cdn import LocalCdn
from tests.support.world import bot_settings

REPO = Path(__file__).resolve().parents[2]


async def landed_archive(data_dir: Path, cdn: LocalCdn) -> str:
    """A server archived by the real ``!backup``, everything landed, Helix stopped: what a restore
    reads. Returns the restore's target for its #general (``guild/channel``)."""
    settings = bot_settings(SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05))
    async with simulated_guild(settings) as world:
        a = await archived_server(world, cdn)
        assert await world.archive.worker.drain(30)
        return f"{world.guild.id}/{a.general.id}"


def restore(data_dir: Path, target: str, dest: Path, *, tty: bool = False) -> tuple[int, str, str]:
    """The operator's command, as a real process (its own rclone), from a folder with no .env."""
    env = {**os.environ, "HELIX_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    env.pop("HELIX_ARCHIVE", None)
    cmd = [sys.executable, "-m", "capture", "restore", target, str(dest)]
    if not tty:
        done = subprocess.run(cmd, cwd=dest.parent, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    main, child = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=dest.parent, env=env, stdout=child, stderr=subprocess.PIPE, text=True)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    return proc.wait(timeout=120), out.decode(errors="replace"), proc.stderr.read() if proc.stderr else ""


async def test_a_restored_channel_opens_offline_with_its_images(data_dir: Path, tmp_path: Path,
                                                                cdn: LocalCdn):  # noqa: F811
    target = await landed_archive(data_dir, cdn)
    dest = tmp_path / "restored"
    code, out, err = await asyncio.to_thread(restore, data_dir, target, dest)
    assert code == 0, err
    assert re.search(r"^restored \d+/\d+ ", out, re.MULTILINE) and "open " in out, out
    # what came from the remote: not the pages the restore writes, nor its files under their own names
    rel = [p.relative_to(dest).parts for p in dest.rglob("*") if p.is_file()]
    files = [dest.joinpath(*r) for r in rel if r[0] in ("discord", "blobs") and "restored" not in r]
    said = f"restored {len(files)} files ({human_size(sum(p.stat().st_size for p in files))}) into {dest}"
    assert said in out, out  # every file counted once, however many were fetched at the same time
    [blob] = list(dest.glob("blobs/sha256/*/*"))[:1] or [None]
    assert blob is not None and any(p.read_bytes() == PHOTO for p in dest.glob("blobs/sha256/*/*"))
    manifest = json.loads((dest / f"discord/{target}/channel.json").read_text())
    assert manifest["channel"]["name"] == "general"
    [page] = list(dest.glob(f"discord/{target}/transcript/*.html"))
    assert "../../../../blobs/sha256/" in page.read_text()
    index = (dest / "index.html").read_text()
    [restored] = list(dest.glob(f"discord/{target}/restored/*.html"))
    assert restored.relative_to(dest).as_posix() in index
    # a file that is not a picture is linked under its own name, beside its blob
    [minutes] = dest.glob("files/*/minutes.txt")
    assert minutes.read_bytes() == b"minutes\n" * 100
    assert f'href="../../../../files/{minutes.parent.name}/minutes.txt"' in restored.read_text()

    # on a terminal: a bar redrawn in place
    code, out, _ = await asyncio.to_thread(restore, data_dir, target, tmp_path / "again", tty=True)
    assert code == 0 and "\r[" in out and "#" in out, out
    # a mistake is one sentence and exit code 2
    taken = tmp_path / "notes.txt"
    taken.write_text("not a folder")
    code, _, err = await asyncio.to_thread(restore, data_dir, target, taken)
    assert code == 2 and err == (f"error: {taken} is a file, not a folder: choose a folder to restore into "
                                 "(a new one is created).\n"), err
    assert taken.read_text() == "not a folder"
    code, _, err = await asyncio.to_thread(restore, data_dir, "general", tmp_path / "x")
    assert code == 2 and err.startswith("error: 'general' is not <guild_id>/<channel_id>") and "Traceback" not in err
    code, _, err = await asyncio.to_thread(restore, data_dir, "1/2", tmp_path / "y")
    assert code == 2 and err.startswith("error: Nothing is archived under discord/1/2/") and "Traceback" not in err

    for shown in (page, restored):
        images = await asyncio.to_thread(images_seen, shown)
        assert images and all(i["ok"] for i in images), images

"""A Helix killed with SIGKILL cannot clean up its rclone socket folder; the next start does, and
touches nothing else: not a folder whose owner still runs, not another user's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from sync._service import SyncService
from sync.settings import SyncSettings
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
import asyncio, sys
from pathlib import Path
from sync._service import SyncService
from sync.settings import SyncSettings

async def main():
    async with SyncService(SyncSettings(data_dir=Path(sys.argv[1]))) as svc:
        print(svc._daemon.socket_path.parent, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def rc_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("helix-rc-*"))


def killed_helix(tmp_path: Path) -> tuple[int, Path]:
    """A Helix with its rclone running, killed with SIGKILL: its pid and the rc folder it left."""
    killed = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "killed")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert killed.stdout is not None
    stale = Path(next(line for line in killed.stdout if line.startswith("/")).strip())  # past its log lines
    assert stale.is_dir(), stale
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert stale.is_dir(), "SIGKILL leaves the folder behind: what this test is about"
    return killed.pid, stale


async def test_a_start_removes_the_rc_folder_of_a_killed_helix_and_nothing_else(tmp_path: Path) -> None:
    killed_pid, stale = await asyncio.to_thread(killed_helix, tmp_path)

    foreign = Path(tempfile.mkdtemp(prefix="helix-rc-", dir=tempfile.gettempdir()))
    (foreign / "owner").write_text(f"{killed_pid} 0\n")
    os.chown(foreign, 65534, 65534)  # another user's Helix: never ours to remove
    try:
        async with SyncService(SyncSettings(data_dir=tmp_path / "live")) as live:
            mine = live._daemon.socket_path.parent
            async with SyncService(SyncSettings(data_dir=tmp_path / "next")):
                await wait_until(lambda: not stale.exists(), 10, "the killed Helix's rc folder removed")
                assert mine.is_dir(), "a running Helix's folder was removed"
                assert foreign.is_dir(), "another user's folder was removed"
    finally:
        os.chown(foreign, 0, 0)
        for child in foreign.iterdir():
            child.unlink()
        foreign.rmdir()

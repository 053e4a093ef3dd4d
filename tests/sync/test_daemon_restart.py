"""rclone dies while Helix runs (the OOM killer, a crash) and the restart does not go to plan: the
archive comes back by itself, without anyone restarting Helix."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from sync._service import SyncService
from sync.errors import DaemonError
from sync.settings import SyncSettings
from tests.support.waiting import wait_until


def gone(pid: int) -> bool:
    """The process no longer exists, not even as a zombie waiting to be reaped."""
    return not Path(f"/proc/{pid}").exists()


async def rclone_killed(svc: SyncService) -> int:
    """SIGKILL the real rclone child, as the OOM killer would; its pid."""
    pid = svc.rclone_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await wait_until(lambda: svc.rclone_pid != pid, 20, "a new rclone started after the kill")
    return pid


async def test_a_restarted_rclone_that_answers_too_late_is_replaced_and_archiving_resumes(
        local_settings: SyncSettings, write_file) -> None:
    async with SyncService(local_settings) as svc:
        daemon = svc._daemon
        answering = daemon._wait_answering
        late: list[int] = []

        async def first_restart_answers_too_late(limit_s: float = 20.0) -> None:
            # An overloaded box: the first restarted rclone answers only after the check gave up on it.
            await answering(limit_s)
            if not late:
                late.append(daemon.pid or 0)
                raise DaemonError(f"rclone rcd did not answer within {limit_s:g} s: "
                                  "the machine may be overloaded; try again.")

        daemon._wait_answering = first_restart_answers_too_late  # type: ignore[method-assign]
        first = await rclone_killed(svc)

        await daemon.wait_ready(limit_s=20.0)  # before the fix: "rclone is restarting and did not come back"
        result = await svc.archive(write_file("after.bin", 100), "after.bin")

        assert result.size == 100
        assert late, "the first restart was not the late one"
        assert svc.rclone_pid not in (first, late[0]), "archiving runs on a child that never answered in time"
        await wait_until(lambda: gone(late[0]), 10, "the late rclone stopped, not left running beside the new one")


@pytest.mark.parametrize("trouble", [RuntimeError("a bug in the restart path"), asyncio.CancelledError()],
                         ids=["a bug", "a future cancelled beneath it, not a stop"])
async def test_trouble_in_a_restart_does_not_end_supervision(trouble: BaseException, local_settings: SyncSettings,
                                                             write_file) -> None:
    async with SyncService(local_settings) as svc:
        daemon = svc._daemon
        spawn = daemon._spawn
        hit: list[bool] = []

        async def first_restart_in_trouble() -> None:
            if not hit:
                hit.append(True)
                raise trouble
            await spawn()

        daemon._spawn = first_restart_in_trouble  # type: ignore[method-assign]
        os.kill(svc.rclone_pid or 0, signal.SIGKILL)
        await wait_until(lambda: hit, 20, "the restart after the kill attempted")

        await daemon.wait_ready(limit_s=20.0)  # the supervisor tried again
        second = await rclone_killed(svc)  # and it still watches: a later death is restarted too
        await daemon.wait_ready(limit_s=20.0)
        result = await svc.archive(write_file("after.bin", 100), "after.bin")

        assert result.size == 100
        assert svc.rclone_pid != second
    assert daemon._supervisor is not None and daemon._supervisor.done(), "close() still ends supervision"
    assert daemon.pid is not None and gone(daemon.pid), "rclone outlived close()"

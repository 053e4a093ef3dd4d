"""What an operator sees when the archive cannot work: one sentence, naming the problem and the fix."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sync._service import SyncService
from sync.errors import AuthError, BinaryError, OperationTimeout, PathError, RemoteNotConfigured, TemporaryError
from sync.settings import SyncSettings
from tests.support.remotes import LoopbackRemote
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def rclone_children() -> set[int]:
    """rclone rcd processes whose parent is this test process."""
    me = os.getpid()
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and len(cmd) > 1 and cmd[1] == b"rcd":
            found.add(int(pid))
    return found


async def test_wrong_password_gives_the_auth_sentence(webdav: LoopbackRemote, data_dir: Path, write_file):
    async with SyncService(webdav.settings(data_dir, password="not-the-password")) as svc:
        with pytest.raises(AuthError) as err:
            await svc.archive(write_file(), "x.bin")
    assert "rejected the login" in str(err.value) and "rclone obscure" in str(err.value)
    assert "not-the-password" not in str(err.value) and webdav.password not in str(err.value)


async def test_server_down_is_retried_then_reported_as_temporary(webdav: LoopbackRemote, data_dir: Path, write_file):
    webdav.stop()
    async with SyncService(webdav.settings(data_dir, retries=2)) as svc:
        retries = []
        import structlog

        with structlog.testing.capture_logs() as logs:
            with pytest.raises(TemporaryError) as err:
                await svc.archive(write_file(), "x.bin")
        retries = [e for e in logs if e["event"] == "sync_retry"]
    assert len(retries) == 2
    assert "unreachable" in str(err.value) and "'loop:'" in str(err.value)


async def test_server_back_up_after_a_retry_succeeds(webdav: LoopbackRemote, data_dir: Path, write_file):
    webdav.stop()
    async with SyncService(webdav.settings(data_dir, retries=8, retry_base_s=0.2)) as svc:
        task = asyncio.create_task(svc.archive(write_file(size=5000), "late.bin"))
        await asyncio.sleep(0.3)
        webdav.start()
        result = await task
    assert result.size == 5000 and webdav.has("late.bin")


async def test_unknown_remote_name(data_dir: Path, write_file):
    settings = SyncSettings(archive="nosuch:helix", data_dir=data_dir, retries=0)
    async with SyncService(settings) as svc:
        with pytest.raises(RemoteNotConfigured) as err:
            await svc.archive(write_file(), "x.bin")
    assert "RCLONE_CONFIG_NOSUCH_TYPE" in str(err.value)


async def test_missing_binary(data_dir: Path):
    with pytest.raises(BinaryError) as err:
        await SyncService(SyncSettings(data_dir=data_dir, rclone_binary="/nonexistent")).start()
    assert "RCLONE_BINARY" in str(err.value) and "/nonexistent" in str(err.value)


def test_missing_binary_from_the_cli(tmp_path: Path):
    env = {**os.environ, "RCLONE_BINARY": "/nonexistent", "HELIX_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "sync", "probe"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "RCLONE_BINARY" in lines[0] and "Traceback" not in out.stderr


@pytest.mark.parametrize("bad", ["../x", "-x", "a\0b", "/etc/passwd", "a\\b", "a/../../b", "x\n", ""])
async def test_bad_paths_are_refused(local_service: SyncService, write_file, bad: str):
    with pytest.raises(PathError) as err:
        await local_service.archive(write_file(), bad)
    assert str(err.value).endswith(".")


async def test_shell_syntax_in_a_name_is_just_a_name(local_service: SyncService, write_file, data_dir: Path):
    canary = Path("/tmp/helix-canary")
    canary.unlink(missing_ok=True)
    name = "$(touch /tmp/helix-canary)"
    result = await local_service.archive(write_file(), name)
    assert not canary.exists()
    assert (data_dir / "archive" / "$(touch " / "tmp" / "helix-canary)").is_file()
    assert result.rel_path == name


async def test_daemon_killed_mid_operation_is_restarted(local_settings: SyncSettings, write_file, data_dir: Path):
    settings = replace(local_settings, bwlimit="4M", retries=3, retry_base_s=0.1)
    async with SyncService(settings) as svc:
        first_pid = svc.rclone_pid
        src = write_file("big.bin", 3 * 1024 * 1024)
        task = asyncio.create_task(svc.archive(src, "big.bin"))
        await asyncio.sleep(0.3)
        os.kill(first_pid, signal.SIGKILL)
        result = await task  # retried on the restarted daemon
        assert svc.rclone_pid != first_pid and svc._daemon.restarts == 1
        assert result.size == src.stat().st_size
        again = await svc.archive(write_file("next.bin", 100), "next.bin")
        assert again.size == 100


async def test_cancelled_archive_stops_the_job_and_leaves_no_final_object(webdav: LoopbackRemote, data_dir: Path,
                                                                          write_file):
    async with SyncService(webdav.settings(data_dir, bwlimit="1M")) as svc:
        src = write_file("big.bin", 8 * 1024 * 1024)
        task = asyncio.create_task(svc.archive(src, "final.bin"))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        jobs = await svc._rc.call("job/list")
        for jobid in jobs.get("jobids", []):
            status = await svc._rc.call("job/status", {"jobid": jobid})
            # The copy's own group (clean-up calls beside it, such as dropping its stats, may still run).
            assert status["finished"] or not status.get("group", "").startswith("helix/"), status
        assert not webdav.has("final.bin")
        # The cancelled call does not wait for its partial's delete: that runs in the background.
        await wait_until(lambda: not webdav.has("*.helix-partial-*"), 10, "the partial upload deleted")


async def test_no_orphan_rclone_after_close_or_cancel(local_settings: SyncSettings):
    svc = SyncService(local_settings)
    await svc.start()
    assert svc.rclone_pid in rclone_children()
    await svc.close()
    assert rclone_children() == set()

    async def run_forever() -> None:
        async with SyncService(local_settings):
            await asyncio.Event().wait()

    task = asyncio.create_task(run_forever())
    while not rclone_children():
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rclone_children() == set()


def test_no_orphan_rclone_when_python_is_killed(tmp_path: Path):
    """SIGKILL gives Python no chance to clean up; PDEATHSIG makes the kernel stop rclone for us."""
    script = (
        "import asyncio, sys\n"
        "from sync import SyncService, SyncSettings\n"
        "async def main():\n"
        f"    async with SyncService(SyncSettings(data_dir=__import__('pathlib').Path({str(tmp_path)!r}))) as s:\n"
        "        print('PID', s.rclone_pid, flush=True)\n"
        "        await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    while not line.startswith("PID "):
        line = proc.stdout.readline()
    rclone_pid = int(line.split()[1])
    assert Path(f"/proc/{rclone_pid}").exists()
    proc.kill()
    proc.wait()
    for _ in range(200):
        if not Path(f"/proc/{rclone_pid}").exists() or "Z" in Path(f"/proc/{rclone_pid}/stat").read_text().split()[2]:
            break
        time.sleep(0.02)
    else:
        pytest.fail("rclone outlived the killed Python process")


async def test_event_loop_stays_responsive_during_a_large_archive(local_service: SyncService, write_file):
    """A ticker measures the longest gap; the benchmark measures the real figure, this is a generous bound."""
    src = write_file("large.bin", 64 * 1024 * 1024)
    loop = asyncio.get_running_loop()
    gaps = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = loop.time()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await local_service.archive(src, "large.bin")
    stop.set()
    await tick
    assert max(gaps) < 0.5


async def test_an_archive_slower_than_its_time_limit_is_stopped(local_settings: SyncSettings, write_file,
                                                               data_dir: Path):
    """The limit is the operation's, not a poll's: rclone's copy is stopped, not left writing."""
    settings = replace(local_settings, bwlimit="1M", retries=0, op_timeout_s=1.0)
    async with SyncService(settings) as svc:
        src = write_file("slow.bin", 6 * 1024 * 1024)
        with pytest.raises(OperationTimeout) as err:
            await svc.archive(src, "slow.bin")
        assert "HELIX_OP_TIMEOUT_S" in str(err.value)
        jobs = await svc._rc.call("job/list")
        for jobid in jobs.get("runningIds", []):
            status = await svc._rc.call("job/status", {"jobid": jobid})
            assert status["finished"] or status["group"].startswith("job/"), status  # job/list itself
    assert list((data_dir / "archive").rglob("*")) == [], "neither the file nor rclone's partial is left"


async def test_a_stop_that_arrives_while_a_timed_out_archive_is_looked_at_still_stops_rclone(
        local_settings: SyncSettings, write_file, data_dir: Path):
    """Helix asks how far a timed-out copy got; a deploy's stop landing right then must not leave it writing."""
    settings = replace(local_settings, bwlimit="1M", retries=0, op_timeout_s=1.0)
    async with SyncService(settings) as svc:
        src = write_file("slow.bin", 6 * 1024 * 1024)
        task = asyncio.create_task(svc.archive(src, "slow.bin"))
        real = svc._rc.call

        async def call(method: str, params: dict | None = None, **kw):
            if method == "core/stats" and params and "group" in params:
                task.cancel()  # the stop's grace runs out while the stats are read
            return await real(method, params, **kw)

        svc._rc.call = call  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            await task
        svc._rc.call = real  # type: ignore[method-assign]
        jobs = await svc._rc.call("job/list")
        for jobid in jobs.get("runningIds", []):
            status = await svc._rc.call("job/status", {"jobid": jobid})
            assert status["finished"] or status["group"].startswith("job/"), status


async def test_a_binary_that_is_not_rclone_is_named_with_the_variable_that_chose_it(data_dir: Path):
    with pytest.raises(BinaryError) as err:
        await SyncService(SyncSettings(data_dir=data_dir, rclone_binary="/bin/true")).start()
    said = str(err.value)
    assert "/bin/true" in said and "RCLONE_BINARY" in said and "it printed nothing" in said, said

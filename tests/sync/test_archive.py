"""An operator archives files to each kind of remote and reads them back intact."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sync._service import SyncService
from sync.settings import SyncSettings
from tests.support.remotes import LoopbackRemote


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_archive_to_the_embedded_local_folder(local_service: SyncService, write_file, data_dir: Path):
    src = write_file("ritual.png", 300_000)
    result = await local_service.archive(src, "rituals/2026/11/22/ritual.png")
    landed = data_dir / "archive" / "rituals/2026/11/22/ritual.png"
    assert landed.read_bytes() == src.read_bytes()
    assert result.size == 300_000 and result.sha256 == sha256(src)
    assert result.remote_path.endswith("rituals/2026/11/22/ritual.png")
    assert local_service.last_archive == result


async def test_a_local_connection_string_archives_where_it_points(tmp_path: Path, data_dir: Path, write_file,
                                                                  monkeypatch: pytest.MonkeyPatch):
    """``:local:/path`` is rclone's to read: nothing named ``:local:`` appears where Helix runs."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "elsewhere" / "archive"
    settings = SyncSettings(data_dir=data_dir, archive=f":local:{target}")
    async with SyncService(settings) as svc:
        src = write_file("a.bin", 1000)
        await svc.archive(src, "rituals/a.bin")
    assert (target / "rituals/a.bin").read_bytes() == src.read_bytes()
    assert not (tmp_path / ":local:").exists()


@pytest.mark.parametrize("kind", ["webdav", "wsgidav", "s3"])
async def test_round_trip_on_a_network_remote(kind: str, tmp_path: Path, data_dir: Path, write_file):
    remote = LoopbackRemote(kind=kind, root=tmp_path / f"served-{kind}").start()
    try:
        async with SyncService(remote.settings(data_dir)) as svc:
            src = write_file("a.bin", 200_000)
            result = await svc.archive(src, "rituals/a.bin")
            assert result.size == 200_000
            assert (remote.storage / "rituals/a.bin").read_bytes() == src.read_bytes()
            if kind == "s3":
                assert result.verified == "md5"  # S3 reports an MD5 without re-reading the object

            pairs = [(write_file(f"m{i}.bin", 1000 + i), f"batch/m{i}.bin") for i in range(5)]
            results = await svc.archive_many(pairs)
            assert [r.rel_path for r in results] == [f"batch/m{i}.bin" for i in range(5)]
            for src_i, rel in pairs:
                assert (remote.storage / rel).read_bytes() == src_i.read_bytes()

            listed = {e.path for e in await svc.list("batch")}
            assert {f"batch/m{i}.bin" for i in range(5)} <= listed

            back = await svc.fetch("rituals/a.bin", tmp_path / "back.bin")
            assert sha256(back) == result.sha256

            report = await svc.probe()
            assert report.ok, [(s.name, s.error) for s in report.steps]
            assert [s.name for s in report.steps] == list(report.STEP_NAMES)
            assert not remote.has(".helix-probe/*"), "the probe cleans up after itself"

            info = await svc.about()
            assert info.remote == remote.archive
            assert info.backend in ("webdav", "s3")
            assert info.rclone_version.startswith("1.")
            assert remote.password not in repr(info)
    finally:
        remote.stop()


async def test_archive_many_is_one_rclone_job(local_service: SyncService, write_file):
    """A batch is one job: the group counter moves by one, not by the number of files."""
    from sync._rclone import client as rc_client

    pairs = [(write_file(f"f{i}.bin", 64), f"many/f{i}.bin") for i in range(30)]
    before = next(rc_client._group_ids)
    await local_service.archive_many(pairs)
    after = next(rc_client._group_ids)
    assert after - before == 2  # one job for the batch, plus the probe of the counter itself


async def test_archive_overwrites_rather_than_duplicates(local_service: SyncService, write_file, data_dir: Path):
    src = write_file("same.bin", 4096)
    await local_service.archive(src, "x/same.bin")
    await local_service.archive(src, "x/same.bin")
    files = [p.name for p in (data_dir / "archive" / "x").iterdir()]
    assert files == ["same.bin"]


async def test_progress_reports_increasing_byte_counts(tmp_path: Path, data_dir: Path, write_file):
    remote = LoopbackRemote(kind="webdav", root=tmp_path / "slow").start()
    try:
        settings = remote.settings(data_dir, bwlimit="2M")
        async with SyncService(settings) as svc:
            src = write_file("big.bin", 6 * 1024 * 1024)
            seen = []
            await svc.archive(src, "big.bin", progress=seen.append)
            counts = [p.bytes for p in seen]
            assert len(counts) >= 3, counts
            assert counts == sorted(counts) and counts[0] < counts[-1]
            assert counts[-1] == src.stat().st_size
            assert seen[-1].total_bytes == src.stat().st_size
    finally:
        remote.stop()


async def test_an_archive_is_one_copy_and_a_check_not_a_poll_loop(local_service: SyncService, write_file,
                                                                   data_dir: Path):
    """rclone answers the copy when it is done: the archive asks for the copy, a check and a clean-up,
    however long the copy takes, instead of polling its status every few milliseconds (each poll is
    one more job rclone keeps for a day, and CPU taken from the copy)."""
    src = write_file("large.bin", 32 * 1024 * 1024)
    known = sha256(src)
    before = set((await local_service._rc.call("job/list"))["jobids"])
    result = await local_service.archive(src, "large.bin", sha256=known)
    after = set((await local_service._rc.call("job/list"))["jobids"])
    assert result.sha256 == known and result.size == src.stat().st_size
    assert (data_dir / "archive" / "large.bin").read_bytes() == src.read_bytes()
    # fsinfo (once per service), copyfile, stat, core/stats-delete, and the second job/list itself
    assert len(after - before) <= 5, sorted(after - before)

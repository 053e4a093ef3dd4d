"""Fixtures that start real things (rclone, loopback servers) and stop them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sync._service import SyncService
from sync.settings import SyncSettings
from tests.support.remotes import LoopbackRemote


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def _remote(kind: str, tmp_path: Path, **kw: object) -> Iterator[LoopbackRemote]:
    remote = LoopbackRemote(kind=kind, root=tmp_path / f"served-{kind}", **kw).start()
    try:
        yield remote
    finally:
        remote.stop()


@pytest.fixture
def webdav(tmp_path: Path) -> Iterator[LoopbackRemote]:
    """``rclone serve webdav`` with a user and password, on 127.0.0.1."""
    yield from _remote("webdav", tmp_path)


@pytest.fixture
def wsgidav(tmp_path: Path) -> Iterator[LoopbackRemote]:
    """wsgidav: a WebDAV server that is not rclone, so Helix is not only tested against itself."""
    yield from _remote("wsgidav", tmp_path)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[LoopbackRemote]:
    """``rclone serve s3`` with an access key pair: a bucket-based backend with server-side hashes."""
    yield from _remote("s3", tmp_path)


@pytest.fixture
def local_settings(data_dir: Path) -> SyncSettings:
    """The embedded default: no HELIX_ARCHIVE, archives go to a folder under the data dir."""
    return SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)


@pytest.fixture
async def local_service(local_settings: SyncSettings) -> AsyncIterator[SyncService]:
    async with SyncService(local_settings) as svc:
        yield svc


@pytest.fixture
def write_file(tmp_path: Path):
    """Make a local file of ``size`` random bytes (the thing a user asks Helix to archive)."""

    def make(name: str = "file.bin", size: int = 1024) -> Path:
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        return path

    return make


# The bot under SimCord (local_world, webdav_world, archive_world, helix_logs) and its helpers. Loaded
# here, before any test module imports it, so pytest rewrites its asserts into readable failures.
pytest_plugins = ("tests.support.world", "tests.support.capture")

"""A share link for an archived file: where the backend has them, the link downloads the same bytes."""

from __future__ import annotations

import asyncio
import hashlib
import urllib.request
from pathlib import Path

import pytest

from sync import SyncService, UnsupportedError
from tests.support.remotes import LoopbackRemote


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - a loopback URL the test made
        return response.read()


async def test_an_s3_archive_gives_a_presigned_link_that_downloads_byte_identical(s3: LoopbackRemote,
                                                                                   data_dir: Path, write_file):
    src = write_file("report.pdf", 300_000)
    async with SyncService(s3.settings(data_dir)) as svc:
        await svc.archive(src, "shared/report.pdf")
        url = await svc.share_link("shared/report.pdf", expire_s=600)
    assert url.startswith("http://127.0.0.1:") and "X-Amz-Expires=600" in url
    body = await asyncio.to_thread(_download, url)
    assert hashlib.sha256(body).digest() == hashlib.sha256(src.read_bytes()).digest()


@pytest.mark.parametrize("where", ["local", "webdav"])
async def test_a_backend_without_links_says_how_to_fetch_instead(where: str, request: pytest.FixtureRequest,
                                                                 data_dir: Path, local_settings, write_file):
    settings = local_settings if where == "local" else request.getfixturevalue("webdav").settings(data_dir)
    src = write_file("big.bin", 10_000)
    async with SyncService(settings) as svc:
        await svc.archive(src, "shared/big.bin")
        with pytest.raises(UnsupportedError) as err:
            await svc.share_link("shared/big.bin")
        assert svc.last_error is None or svc.last_error.kind != "unsupported"
    sentence = str(err.value)
    assert "offers no share links" in sentence and "rclone copy" in sentence and "shared/big.bin" in sentence

"""Downloads stream to the spool, hashed as written; dead links and oversized files say so."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from capture.download import Downloader, LinkDead, TooBig
from capture.settings import CaptureSettings
from runtime.env import EnvProblems

BIG = os.urandom(5 * (1 << 20) + 17)
CHUNK_BYTES = os.urandom(1 << 20)
HUGE_CHUNKS = 64


@pytest_asyncio.fixture
async def server() -> AsyncIterator[str]:
    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # chunked, no Content-Length: the limit must hold while streaming
        await resp.prepare(request)
        for i in range(0, len(BIG), 65536):
            await resp.write(BIG[i:i + 65536])
        await resp.write_eof()
        return resp

    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = HUGE_CHUNKS * len(CHUNK_BYTES)
        await resp.prepare(request)
        for _ in range(HUGE_CHUNKS):
            await resp.write(CHUNK_BYTES)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/huge", huge)
    app.router.add_get("/expired", lambda r: web.Response(status=403, text="This content is no longer available."))
    app.router.add_get("/gone", lambda r: web.Response(status=404))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def downloader(tmp_path: Path) -> AsyncIterator[Downloader]:
    d = Downloader(tmp_path / "spool")
    await d.open()
    try:
        yield d
    finally:
        await d.close()


async def test_a_streamed_file_lands_whole_with_its_hash(server, downloader):
    got = await downloader.fetch(f"{server}/big", 10 << 20)
    assert got.size == len(BIG) and got.sha256 == hashlib.sha256(BIG).hexdigest()
    assert got.path.read_bytes() == BIG


async def test_dead_links_and_oversized_files_leave_nothing_behind(server, downloader, tmp_path):
    with pytest.raises(LinkDead) as expired:
        await downloader.fetch(f"{server}/expired", 1 << 20)
    assert expired.value.status == 403
    with pytest.raises(LinkDead):
        await downloader.fetch(f"{server}/gone", 1 << 20)
    with pytest.raises(TooBig):
        await downloader.fetch(f"{server}/big", 1 << 20)
    assert list((tmp_path / "spool").iterdir()) == []


def test_limits_are_settings_with_one_sentence_each():
    s = CaptureSettings.from_env({"HELIX_MAX_ATTACHMENT_MB": "8", "HELIX_SPOOL_MAX_GB": "0.5",
                                  "HELIX_BACKUP_CONCURRENCY": "3", "HELIX_WATCH_FLUSH_S": "5",
                                  "HELIX_KEEP_DELETED": "1", "HELIX_ARCHIVIST_ROLE_IDS": "11,12"})
    assert (s.max_attachment_bytes, s.spool_max_bytes, s.backup_concurrency) == (8 << 20, 1 << 29, 3)
    assert s.watch_flush_s == 5 and s.keep_deleted and s.archivist_role_ids == {11, 12}
    p = EnvProblems()
    CaptureSettings.from_env({"HELIX_MAX_ATTACHMENT_MB": "lots", "HELIX_BACKUP_CONCURRENCY": "0"}, p)
    assert len(p.sentences) == 2 and all(line.startswith("HELIX_") for line in p.sentences)


async def test_a_file_is_never_whole_in_memory(server, downloader):
    tracemalloc.start()
    try:
        got = await downloader.fetch(f"{server}/huge", 1 << 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.size == HUGE_CHUNKS << 20
    digest = hashlib.sha256()
    for _ in range(HUGE_CHUNKS):
        digest.update(CHUNK_BYTES)
    assert got.sha256 == digest.hexdigest()
    # server and client together, in this process: a few chunks in flight, not the 64 MiB file
    assert peak < 16 << 20, f"peak {peak / (1 << 20):.1f} MiB while downloading 64 MiB"


def test_a_start_sweeps_what_a_stop_left_half_done_in_the_spool_and_nothing_else(tmp_path: Path):
    """Half-written downloads, and segments and manifests rendered but never handed to the outbox (the
    catalogue still counts them as due, so they are rendered again): nothing refers to any of them."""
    spool = tmp_path / "spool"
    spool.mkdir()
    left = [spool / name for name in (".download-1a2b", "segment-3-9f9f.jsonl", "segment-3-9f9f.html",
                                      "channel-42-abcd.json")]
    kept = spool / "notes.txt"  # not Helix's leftover: not its to delete
    for path in [*left, kept]:
        path.write_text("x")
    Downloader(spool).sweep()
    assert not any(p.exists() for p in left) and kept.exists()

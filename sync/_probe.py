"""The archive round trip behind ``!testmega`` and ``python -m sync probe``.

Write a probe file, upload it, list it, read it back, compare SHA-256, delete it: each step
timed, and the first failing step named with its sentence, because "the remote is broken" is
only useful to an operator when it says where.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sync._hashing import hash_file
from sync._remote import Remote
from sync.errors import NotFoundError, SyncError, TemporaryError

T = TypeVar("T")
PROBE_DIR = ".helix-probe"


@dataclass
class ProbeStep:
    name: str
    seconds: float
    ok: bool
    error: SyncError | None = None


@dataclass
class ProbeReport:
    remote: str
    steps: list[ProbeStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps) and len(self.steps) == len(ProbeReport.STEP_NAMES)

    @property
    def failed(self) -> ProbeStep | None:
        return next((s for s in self.steps if not s.ok), None)

    @property
    def total_s(self) -> float:
        return sum(s.seconds for s in self.steps)

    STEP_NAMES = ("write", "upload", "list", "read back", "compare", "delete")


async def run_probe(remote: Remote) -> ProbeReport:
    """A round trip on the archive root, each step timed; stops at the first failing step."""
    report = ProbeReport(remote.display)
    rel = f"{PROBE_DIR}/probe-{socket.gethostname()}-{secrets.token_hex(6)}.bin"
    work = Path(tempfile.mkdtemp(prefix="helix-probe-"))
    uploaded = False

    async def step(name: str, op: Callable[[], Awaitable[T]]) -> T:
        t0 = time.perf_counter()
        try:
            result = await op()
        except SyncError as exc:
            report.steps.append(ProbeStep(name, time.perf_counter() - t0, False, exc))
            raise
        report.steps.append(ProbeStep(name, time.perf_counter() - t0, True))
        return result

    try:
        payload = secrets.token_bytes(64 * 1024)
        src = work / "probe.bin"
        await step("write", lambda: asyncio.to_thread(src.write_bytes, payload))
        await step("upload", lambda: remote.copy_in(src, rel, timeout_s=120))
        uploaded = True

        async def listed() -> None:
            names = {e.path for e in await remote.list(PROBE_DIR)}
            if rel not in names:
                raise NotFoundError(f"The probe file was uploaded but is not listed in '{remote.display}': "
                                    "the remote may be eventually consistent or read-only.")

        await step("list", listed)
        back = work / "back.bin"
        await step("read back", lambda: remote.copy_out(rel, back, timeout_s=120))

        async def compare() -> None:
            got = (await hash_file(back))["sha256"]
            want = (await hash_file(src))["sha256"]
            if got != want:
                raise TemporaryError(f"The probe file read back from '{remote.display}' differs from what was "
                                     "written (SHA-256 mismatch): the remote or a proxy is corrupting data.")

        await step("compare", compare)
        await step("delete", lambda: remote.delete(rel))
        uploaded = False
        with contextlib.suppress(SyncError):
            await remote.rmdir(PROBE_DIR)
    except SyncError:
        pass  # the failing step is in the report, and the remote recorded the error
    finally:
        if uploaded:
            with contextlib.suppress(Exception):
                await remote.delete(rel, timeout_s=10)
        await asyncio.to_thread(shutil.rmtree, work, True)
    return report

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
from typing import TYPE_CHECKING, TypeVar

from sync._hashing import hash_file
from sync.errors import NotFoundError, SyncError, TemporaryError

if TYPE_CHECKING:
    from sync._service import SyncService

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


async def run_probe(svc: SyncService) -> ProbeReport:
    """A round trip on the archive root, each step timed; stops at the first failing step."""
    report = ProbeReport(svc.root.display)
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
        await step("upload", lambda: svc.rc.run_job("operations/copyfile", {
            "srcFs": str(work), "srcRemote": src.name, "dstFs": svc.root.fs, "dstRemote": rel}, timeout_s=120))
        uploaded = True

        async def listed() -> None:
            out = await svc.rc.call("operations/list", {"fs": svc.root.fs, "remote": PROBE_DIR})
            names = {i["Path"] for i in out.get("list", [])}
            if rel not in names:
                raise NotFoundError(f"The probe file was uploaded but is not listed in '{svc.root.display}': "
                                    "the remote may be eventually consistent or read-only.")

        await step("list", listed)
        back = work / "back.bin"
        await step("read back", lambda: svc.fetch(rel, back))

        async def compare() -> None:
            got = (await hash_file(back))["sha256"]
            want = (await hash_file(src))["sha256"]
            if got != want:
                raise TemporaryError(f"The probe file read back from '{svc.root.display}' differs from what was "
                                     "written (SHA-256 mismatch): the remote or a proxy is corrupting data.")

        await step("compare", compare)
        await step("delete", lambda: svc.rc.call("operations/deletefile", {"fs": svc.root.fs, "remote": rel}))
        uploaded = False
        with contextlib.suppress(SyncError):
            await svc.rc.call("operations/rmdir", {"fs": svc.root.fs, "remote": PROBE_DIR})
        svc.last_ok_at = time.time()
    except SyncError as exc:
        svc.last_error = exc
    finally:
        if uploaded:
            with contextlib.suppress(Exception):
                await svc.rc.call("operations/deletefile", {"fs": svc.root.fs, "remote": rel}, timeout_s=10)
        await asyncio.to_thread(shutil.rmtree, work, True)
    return report

"""The image tests' Docker side: is an engine there, the local base image, building and running Helix.

No image registry is reachable from the machines CI runs on, so ``python:3.11-slim-bookworm``
cannot be pulled. ``base_image()`` makes a stand-in from Debian packages instead, once per
machine: ``debootstrap --variant=minbase bookworm`` with Python, pip and CA certificates, the
``EXTERNALLY-MANAGED`` marker removed (so ``pip install`` as root works as in the official image),
and the host's extra CA certificates installed (HTTPS from these machines may be re-signed by a
proxy, and pip inside the build must trust what the host trusts). It is tagged with a hash of its
recipe (this text's inputs and those certificates), so a changed recipe builds a new one and an
unchanged one is never built twice.

Everything here is test code run by pytest, outside the event loop: plain ``subprocess.run``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
# What docker import sets, as the official image does (its PATH, LANG and CMD).
IMPORT_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8",
                  'CMD ["python3"]')
LOCK = Path(tempfile.gettempdir()) / "helix-base-image.lock"
BASE_REPO = "helix-base"


def docker(*args: str, check: bool = True, timeout: float = 600, input_bytes: bytes | None = None,
           ) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, input=input_bytes)
    result = subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode(errors="replace"),
                                         out.stderr.decode(errors="replace"))
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} … failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def engine_problem() -> str | None:
    """None when a Docker engine answers; else one sentence saying why not."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH (.ci/run installs Debian's docker.io when it runs as root)"
    try:
        out = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                             text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer `docker info` within 30 s"
    if out.returncode != 0:
        return f"no Docker engine is reachable ({(out.stderr.strip().splitlines() or ['?'])[-1]})"
    return None


def _mirror() -> str:
    """The Debian mirror the host's apt uses (a deb822 or one-line source), else deb.debian.org."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if path.is_file():
            for line in path.read_text().splitlines():
                words = line.split()
                if words[:1] == ["URIs:"] and len(words) > 1:
                    return words[1]
                if words[:1] == ["deb"] and len(words) > 2:
                    return next(w for w in words[1:] if not w.startswith("["))
    return "http://deb.debian.org/debian"


def _host_cas() -> list[Path]:
    return sorted(HOST_CA_DIR.glob("*.crt")) if HOST_CA_DIR.is_dir() else []


def recipe() -> dict[str, object]:
    return {"suite": SUITE, "variant": "minbase", "packages": list(PACKAGES), "mirror": _mirror(),
            "changes": list(IMPORT_CHANGES), "no_externally_managed": True, "apt_caches_removed": True,
            "cas": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in _host_cas()}, "version": 1}


def base_tag() -> str:
    digest = hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]
    return f"{BASE_REPO}:{digest}"


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


@contextmanager
def _machine_lock() -> Iterator[None]:
    """Two test sessions on one machine build the base once, not twice at the same time."""
    with open(LOCK, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def base_image() -> str:
    """The local base image's tag, built now if this machine has none for this recipe."""
    tag = base_tag()
    if image_exists(tag):
        return tag
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise AssertionError(f"the base image {tag} is missing and cannot be built here: it needs root and "
                             "debootstrap (.ci/run installs it)")
    with _machine_lock():
        if image_exists(tag):
            return tag
        _build_base(tag)
    return tag


def _build_base(tag: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="helix-base-", dir="/var/tmp"))
    rootfs = work / "rootfs"
    try:
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs),
                        _mirror()], check=True, capture_output=True, timeout=900)
        for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        for ca in _host_cas():
            shutil.copy2(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
        subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True, capture_output=True,
                       timeout=120)
        for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
            for path in rootfs.glob(pattern):
                if path.is_file():
                    path.unlink()
        changes = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            imported = subprocess.run(["docker", "import", *changes, "-", tag], stdin=tar.stdout,
                                      capture_output=True, text=True, timeout=600)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
        if imported.returncode != 0:
            raise AssertionError(f"docker import of the base image failed: {imported.stderr[-2000:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Build:
    ok: bool
    log: str
    seconds: float


def build(context: Path, tag: str, *, base: str, dockerfile: Path | None = None,
          extra: Sequence[str] = ()) -> Build:
    """``docker build`` of ``context`` on ``base``; the whole log, success or not."""
    args = ["build", "--network", "host", "--force-rm", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, *extra]
    if dockerfile is not None:
        args += ["-f", str(dockerfile)]
    started = time.perf_counter()
    out = docker(*args, str(context), check=False, timeout=900)
    return Build(out.returncode == 0, out.stdout + out.stderr, time.perf_counter() - started)


def context_copy(source: Path, dest: Path) -> Path:
    """The build context as a fresh clone would have it: no .venv, no .git, no caches."""
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", "data", "*.pyc")
    shutil.copytree(source, dest, ignore=ignore)
    return dest

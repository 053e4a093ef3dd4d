"""The archive root as rclone sees it: single-attempt, typed operations over the rc API.

Every rc call on the archive root goes through here, so the rest of ``sync`` never builds rc
parameters or unpacks rclone's dictionaries, and one place knows whether the remote last
answered or refused (``last_ok_at``, ``last_error``). Retries, verification and staging are
the policy of ``SyncService`` above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sync._hashing import HASHLIB_TYPES
from sync._paths import ArchiveRoot, clean_relative
from sync._rclone.classify import local_disk_full
from sync._rclone.client import ProgressCallback, RcClient
from sync.errors import NotFoundError, SyncError, UnsupportedError

T = TypeVar("T")
# rclone skips a copy or move whose destination has the same size and modification time, and many
# backends keep times to the second: a same-sized file written over within a second (a heartbeat)
# would silently stay the old one. An archive request always means "store this one".
ALWAYS_TRANSFER = {"IgnoreTimes": True}


@dataclass(frozen=True)
class RemoteEntry:
    """One object or folder on the remote, relative to the archive root."""

    path: str
    size: int
    is_dir: bool
    mod_time: str
    hashes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Features:
    """What the backend can do, as far as Helix's policy cares."""

    partial_uploads: bool  # the backend uploads under a temporary name itself
    move: bool  # a server-side move exists, so staging under a temporary name is cheap
    slow_hash: bool
    about: bool  # it reports space used and free
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class Usage:
    total_bytes: int | None
    used_bytes: int | None
    free_bytes: int | None


class Remote:
    """Typed operations on the archive root, one attempt each; records the last success and error."""

    def __init__(self, rc: RcClient, root: ArchiveRoot, extra_env: Mapping[str, str]) -> None:
        self._rc = rc
        self.root = root
        self._extra_env = extra_env
        self._features: Features | None = None
        self.last_ok_at: float | None = None
        self.last_error: SyncError | None = None

    @property
    def rc(self) -> RcClient:
        """The daemon's rc API, for a look at another remote than the root (the one under a crypt)."""
        return self._rc

    @property
    def display(self) -> str:
        """The root as it may be shown: never an inline password of an on-the-fly remote."""
        return self.root.display

    def path_of(self, rel: str) -> str:
        sep = "" if self.root.display.endswith((":", "/")) else "/"
        return f"{self.root.display}{sep}{rel}"

    async def _answer(self, call: Awaitable[T]) -> T:
        """Await one rc call on the remote and record how the remote answered."""
        try:
            result = await call
        except NotFoundError:
            self.last_ok_at = time.time()  # "not there" is an answer: the remote is up
            raise
        except SyncError as exc:
            self.last_error = exc
            raise
        self.last_ok_at = time.time()
        return result

    async def features(self) -> Features:
        if self._features is None:
            info = await self._answer(self._rc.call("operations/fsinfo", {"fs": self.root.fs}))
            f = info.get("Features", {})
            self._features = Features(
                partial_uploads=bool(f.get("PartialUploads")), move=bool(f.get("Move")),
                slow_hash=bool(f.get("SlowHash")), about=bool(f.get("About")),
                hashes=tuple(h.lower() for h in info.get("Hashes") or []))
        return self._features

    async def cheap_hash_type(self) -> str | None:
        """A hash the backend reports cheaply and hashlib can compute; None means size only."""
        f = await self.features()
        if f.slow_hash:
            return None  # rclone already checked this during the transfer; re-reading would double the cost
        return next((h for h in HASHLIB_TYPES if h in f.hashes), None)

    async def copy_in(self, src: Path, rel: str, *, move: bool = False, progress: ProgressCallback | None = None,
                      timeout_s: float = 3600.0) -> None:
        """Copy one local file to ``rel`` as an rc job (progress, and stopped if we are cancelled).

        ``move``: hand the file over instead: on a local archive folder a rename, elsewhere an
        upload after which rclone deletes the source (it stays where the upload fails).
        """
        if move and (folder := self._folder()) is not None:
            # What rclone's local backend would do, without a call through the daemon per file; a
            # rename that cannot be done here (another filesystem) is left to rclone's copy.
            if await asyncio.to_thread(_rename_into, src, folder / clean_relative(rel)):
                self.last_ok_at = time.time()
                return
        await self._answer(self._rc.run_job("operations/movefile" if move else "operations/copyfile", {
            "srcFs": str(src.parent), "srcRemote": src.name, "dstFs": self.root.fs, "dstRemote": rel,
            "_config": ALWAYS_TRANSFER,
        }, progress=progress, timeout_s=timeout_s))

    @contextlib.asynccontextmanager
    async def _local_side(self, dest: Path) -> AsyncIterator[None]:
        """A download whose local disk filled up is that disk's problem, not the remote's: rclone's text
        (``preallocate: file too big…``) would otherwise read as a remote failure worth retrying, and
        ``!status`` would report a healthy remote as failing."""
        before = self.last_error
        try:
            yield
        except SyncError as exc:
            full = local_disk_full(exc.detail or str(exc), str(dest))
            if full is None:
                raise
            if self.last_error is exc:
                self.last_error = before
                self.last_ok_at = time.time()
            raise full from None

    async def copy_tree_in(self, folder: Path, *, progress: ProgressCallback | None = None,
                           timeout_s: float = 3600.0) -> None:
        """Copy a local folder's files under the root, keeping their relative paths, as ONE job."""
        await self._answer(self._rc.run_job("sync/copy", {
            "srcFs": str(folder), "dstFs": self.root.fs, "createEmptySrcDirs": False,
            "_config": {"NoTraverse": True},
        }, progress=progress, timeout_s=timeout_s))

    async def copy_out(self, rel: str, dest: Path, *, timeout_s: float = 3600.0) -> None:
        async with self._local_side(dest.parent):
            await self._answer(self._rc.run_job("operations/copyfile", {
                "srcFs": self.root.fs, "srcRemote": clean_relative(rel),
                "dstFs": str(dest.parent), "dstRemote": dest.name}, timeout_s=timeout_s))

    async def copy_tree_out(self, folder: str, dest: Path, include: Sequence[str], *,
                            timeout_s: float = 3600.0) -> None:
        """Copy the files under ``folder`` that match ``include`` (rclone filter rules) into ``dest``, as ONE job."""
        sub = clean_relative(folder)
        fs = f"{self.root.fs}{sub}" if self.root.fs.endswith(":") else f"{self.root.fs.rstrip('/')}/{sub}"
        async with self._local_side(dest):
            await self._answer(self._rc.run_job("sync/copy", {
                "srcFs": fs, "dstFs": str(dest), "createEmptySrcDirs": False,
                "_filter": {"IncludeRule": list(include)}}, timeout_s=timeout_s))

    async def move(self, src_rel: str, dst_rel: str) -> None:
        await self._answer(self._rc.call("operations/movefile", {
            "srcFs": self.root.fs, "srcRemote": src_rel, "dstFs": self.root.fs, "dstRemote": dst_rel,
            "_config": ALWAYS_TRANSFER}))

    async def stat(self, rel: str, hash_type: str | None = None) -> RemoteEntry | None:
        """The entry at ``rel`` (with its ``hash_type`` hash when asked), or None when nothing is there."""
        rel = clean_relative(rel)
        if not hash_type and (folder := self._folder()) is not None:
            found = await asyncio.to_thread(_local_entry, folder, rel)
            if found is not None:
                return found  # else rclone has the last word (it may spell the name differently)
        params: dict = {"fs": self.root.fs, "remote": rel}
        if hash_type:
            params["opt"] = {"showHash": True, "hashTypes": [hash_type]}
        try:
            out = await self._answer(self._rc.call("operations/stat", params))
        except NotFoundError:
            return None
        item = out.get("item")
        return _entry(item) if item else None

    def local_folder(self, rel: str) -> Path | None:
        """Where ``rel`` is on this machine's filesystem when the archive is a plain local folder."""
        folder = self._folder()
        return None if folder is None else folder / clean_relative(rel)

    def _folder(self) -> Path | None:
        """The archive's folder when it is a plain local path: a size is then read, and a file
        handed over renamed, on the filesystem, one thread hop instead of a call through the daemon
        (a backup archives thousands)."""
        return self.root.folder

    async def list(self, folder: str = "", *, recurse: bool = True, files_only: bool = False,
                   dirs_only: bool = False, timeout_s: float = 60.0) -> list[RemoteEntry]:
        """Entries under ``folder``; raises NotFoundError when the folder does not exist."""
        opt = {"recurse": recurse, "filesOnly": files_only, "dirsOnly": dirs_only}
        out = await self._answer(self._rc.call("operations/list", {"fs": self.root.fs, "remote": folder,
                                                                   "opt": opt}, timeout_s=timeout_s))
        return [_entry(i) for i in out.get("list", [])]

    async def delete(self, rel: str, *, timeout_s: float = 60.0) -> None:
        await self._answer(self._rc.call("operations/deletefile", {"fs": self.root.fs, "remote": rel},
                                         timeout_s=timeout_s))

    async def rmdir(self, rel: str) -> None:
        await self._answer(self._rc.call("operations/rmdir", {"fs": self.root.fs, "remote": rel}))

    async def usage(self) -> Usage:
        """Space used and free where the backend reports it (all None where it does not)."""
        if not (await self.features()).about:
            return Usage(None, None, None)
        with contextlib.suppress(SyncError):
            out = await self._answer(self._rc.call("operations/about", {"fs": self.root.fs}, timeout_s=30))
            return Usage(out.get("total"), out.get("used"), out.get("free"))
        return Usage(None, None, None)

    async def public_link(self, rel: str, expire_s: float) -> str:
        """A URL anyone holding it can download ``rel`` from, valid for ``expire_s`` where the backend
        honours an expiry (S3 presigned URLs, MEGA, Drive, Dropbox); UnsupportedError where it has none."""
        params = {"fs": self.root.fs, "remote": clean_relative(rel), "expire": f"{max(1, int(expire_s))}s"}
        try:
            out = await self._rc.call("operations/publiclink", params)
        except SyncError as exc:
            # rclone reports a backend without links as a plain failure (HTTP 500), which would
            # otherwise read as "remote unreachable, retry". The remote did answer.
            if "support public links" not in (exc.detail or ""):
                self.last_error = exc
                raise
            self.last_ok_at = time.time()
            raise UnsupportedError(f"The archive remote '{self.display}' offers no share links: fetch the file "
                                   f"with `rclone copy` from '{self.path_of(rel)}' instead.",
                                   detail=exc.detail) from None
        self.last_ok_at = time.time()
        url = out.get("url")
        if not url:
            raise UnsupportedError(f"The archive remote '{self.display}' returned no share link for "
                                   f"'{self.path_of(rel)}': fetch it with `rclone copy` instead.")
        return str(url)

    async def ping(self, timeout_s: float = 10.0) -> None:
        """A cheap live call; a missing root folder still counts as an answer (it comes with the first archive)."""
        with contextlib.suppress(NotFoundError):
            await self.list("", recurse=False, dirs_only=True, timeout_s=timeout_s)

    async def backend_type(self) -> str:
        """The backend's type (``mega``, ``s3``…), never the rest of its configuration."""
        if self.root.backend:
            return self.root.backend
        name = self.root.remote_name or ""
        env_key = f"RCLONE_CONFIG_{name.upper().replace('-', '_').replace('.', '_')}_TYPE"
        env_type = self._extra_env.get(env_key) or os.environ.get(env_key)
        if env_type:
            return env_type
        with contextlib.suppress(SyncError):
            section = await self._rc.call("config/get", {"name": name})
            if section.get("type"):
                return str(section["type"])  # only the type: the section also holds credentials
        return "unknown"


def _rename_into(src: Path, dest: Path) -> bool:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
    except OSError:
        return False
    return True


def _local_entry(folder: Path, rel: str) -> RemoteEntry | None:
    try:
        st = os.stat(folder / rel)
    except OSError:
        return None
    is_dir = stat.S_ISDIR(st.st_mode)
    return RemoteEntry(path=rel, size=-1 if is_dir else st.st_size, is_dir=is_dir,
                       mod_time=datetime.fromtimestamp(st.st_mtime, UTC).isoformat().replace("+00:00", "Z"))


def _entry(item: Mapping) -> RemoteEntry:
    hashes = {k.lower(): str(v).lower() for k, v in (item.get("Hashes") or {}).items() if v}
    return RemoteEntry(path=item["Path"], size=int(item.get("Size", -1)), is_dir=bool(item.get("IsDir")),
                       mod_time=item.get("ModTime", ""), hashes=hashes)

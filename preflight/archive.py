"""The preflight's checks of where Helix keeps things: the data folder and the archive remote.

Both must be usable before the bot starts, and both fail in ways an operator can fix from one
sentence: a Railway volume owned by root, a remote that is not defined, a password that was not
obscured. ``sync`` is imported lazily (``LazySync``): it needs packages that may be what is missing.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import errno
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from preflight.packages import Finding, ok, problem, warning
from runtime.env import data_dir as configured_data_dir

_RAILWAY_MARKERS = ("RAILWAY_ENVIRONMENT", "RAILWAY_ENVIRONMENT_NAME", "RAILWAY_PROJECT_ID", "RAILWAY_SERVICE_ID")
_ENV_NAME = re.compile(r"^[A-Za-z0-9_]+$")
# Backends that wrap another remote named in their ``remote`` option: rclone builds that one first,
# and an undefined one fails every operation as if the outer remote were missing.
_WRAPPERS = frozenset({"crypt", "alias", "chunker", "compress", "hasher"})
# Backends that keep objects in buckets: an archive path without one cannot be written.
_BUCKETED = frozenset({"s3", "gcs", "b2", "azureblob", "swift", "oracleobjectstorage", "qingstor", "storj"})


class LazySync:
    """``sync`` imported once, lazily: it needs aiohttp and structlog, which may be what is missing."""

    def __init__(self) -> None:
        self.error: str | None = None
        try:
            import sync
        except Exception as exc:  # any failure to import is the finding itself
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.api = sync

    def unavailable(self, what: str) -> Finding:
        return problem(f"{what} was not checked because the sync package cannot be imported ({self.error}): "
                       "fix the package problems listed here first.")


def on_railway(env: Mapping[str, str]) -> bool:
    return any(env.get(k) for k in _RAILWAY_MARKERS) or bool(env.get("RAILWAY_VOLUME_MOUNT_PATH"))


def data_dir(env: Mapping[str, str]) -> Path:
    path = configured_data_dir(env).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def data_dir_advice(target: Path, exc: OSError, env: Mapping[str, str], uid: int) -> str:
    """One sentence: why ``target`` cannot be written and exactly what to do, on Railway or elsewhere."""
    blocker = target
    while not blocker.exists() and blocker != blocker.parent:
        blocker = blocker.parent
    railway = on_railway(env)
    head = f"HELIX_DATA_DIR {target}"
    if blocker.exists() and not blocker.is_dir():
        return (f"{head} cannot be created because {blocker} is a file, not a folder: set HELIX_DATA_DIR to a "
                "folder path" + (" (the Railway volume's mount path)." if railway else "."))
    if exc.errno == errno.EROFS:
        fix = (f"attach a Railway volume mounted at {target}" if railway
               else "point HELIX_DATA_DIR at a writable folder or mount a writable volume there")
        return f"{head} is on a read-only file system: {fix}."
    if exc.errno == errno.ENOSPC:
        return f"{head} is full: free space there" + (" or grow the Railway volume." if railway else ".")
    if exc.errno in (errno.EACCES, errno.EPERM):
        try:
            owner = blocker.stat().st_uid
        except OSError:
            owner = "unknown"
        if railway:
            return (f"{head} is not writable by this process (uid {uid}; {blocker} belongs to uid {owner}): "
                    "Railway mounts volumes as root, so set the service variable RAILWAY_RUN_UID=0 and redeploy.")
        return (f"{head} is not writable by uid {uid} ({blocker} belongs to uid {owner}): run "
                f"`chown -R {uid} {blocker}`, or set HELIX_DATA_DIR to a folder this user can write.")
    return f"{head} cannot be written ({exc.strerror or exc}): set HELIX_DATA_DIR to a writable folder."


def check_data_dir(env: Mapping[str, str]) -> list[Finding]:
    target = data_dir(env)
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe_file = tempfile.mkstemp(prefix=".helix-write-test-", dir=target)
        os.close(fd)
        os.unlink(probe_file)
    except OSError as exc:
        return [problem(data_dir_advice(target, exc, env, os.geteuid()))]
    findings = [ok(f"data directory {target} is writable")]
    volume = env.get("RAILWAY_VOLUME_MOUNT_PATH", "").strip()
    if volume and not target.resolve().is_relative_to(Path(volume).resolve()):
        findings.append(problem(
            f"HELIX_DATA_DIR is {target} but the Railway volume is mounted at {volume}, so the outbox and local "
            f"archives would be lost at every deploy: set HELIX_DATA_DIR={volume} or mount the volume at {target}."))
    elif not volume and on_railway(env):
        findings.append(warning(
            f"No Railway volume is attached, so {target} is wiped at every deploy and archives still queued in "
            f"the outbox are lost: attach a volume mounted at {target} (README: Deploy on Railway)."))
    return findings


def rclone_config_path(env: Mapping[str, str]) -> Path:
    """The config file rclone would read, by rclone's own search order."""
    explicit = env.get("RCLONE_CONFIG", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    home = Path(env.get("HOME", "") or Path.home())
    xdg = env.get("XDG_CONFIG_HOME", "").strip()
    candidates = [Path(xdg) / "rclone" / "rclone.conf"] if xdg else []
    candidates += [home / ".config" / "rclone" / "rclone.conf", home / ".rclone.conf"]
    return next((c for c in candidates if c.is_file()), candidates[0])


def looks_obscured(value: str) -> bool:
    """rclone obscure's output: base64url (no padding) of a 16-byte IV plus the ciphertext."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        return False
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(raw) > 16


def check_local_archive(folder: Path, configured: bool, sync: LazySync) -> list[Finding]:
    """A local archive root is created and written like the data directory: check both, now."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe_file = tempfile.mkstemp(prefix=".helix-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe_file)
    except OSError as exc:
        if folder.is_dir():  # it exists but cannot be written in
            what = f"HELIX_ARCHIVE {folder}" if configured else f"The local archive folder {folder}"
            return [problem(f"{what} is not writable by uid {os.geteuid()} ({(exc.strerror or 'error').lower()}): "
                            "make it writable by this user, or set HELIX_ARCHIVE to a folder it can write.")]
        return [problem(sync.api.local_root_problem(folder, exc, configured))]
    return [ok(f"local archive folder {folder} is writable")]


def rclone_backends(sync: LazySync, env: Mapping[str, str]) -> set[str] | None:
    """The backend types this rclone knows (``rclone help backends``); None when it cannot tell."""
    import asyncio

    async def ask() -> str:
        binary = sync.api.find_rclone(env.get("RCLONE_BINARY", "").strip() or None)
        proc = await asyncio.create_subprocess_exec(binary, "help", "backends", stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        async with asyncio.timeout(30):
            out, _ = await proc.communicate()
        return out.decode(errors="replace")

    try:
        text = asyncio.run(ask())
    except (sync.api.SyncError, OSError, TimeoutError):
        return None  # the rclone check reports why
    names = {line.split()[0] for line in text.splitlines() if line.startswith("  ") and line.split()}
    return names or None


def unknown_backend(backend: str, where: str, sync: LazySync, env: Mapping[str, str]) -> list[Finding]:
    known = rclone_backends(sync, env)
    if known is None or backend in known:
        return []
    return [problem(f"{where} asks for the backend '{backend}', which this rclone does not have: use one of "
                    "`rclone help backends` (mega, webdav, s3, drive...).")]


def check_rclone_config(env: Mapping[str, str]) -> list[Finding]:
    """An RCLONE_CONFIG that names no file: rclone carries on without it, and every remote in it is missing."""
    explicit = env.get("RCLONE_CONFIG", "").strip()
    if explicit and not Path(explicit).expanduser().is_file():
        return [problem(f"RCLONE_CONFIG points to {explicit}, which does not exist: fix the path, or unset "
                        "RCLONE_CONFIG and define the remote with RCLONE_CONFIG_<NAME>_TYPE and its options.")]
    return []


def _defined(name: str, env: Mapping[str, str]) -> bool:
    """Whether rclone can find a remote called ``name``: by variables, or as a section of its config file."""
    if env.get(f"RCLONE_CONFIG_{name.upper()}_TYPE", "").strip():
        return True
    conf = rclone_config_path(env)
    try:
        text = conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if text.lstrip().startswith("# Encrypted rclone configuration File"):
        return True  # cannot be looked into here; the probe tries it
    return re.search(rf"^\[{re.escape(name)}\]\s*$", text, re.M) is not None


def _wrapped_remote(name: str, backend: str, env: Mapping[str, str]) -> list[Finding]:
    """A crypt (or alias, chunker...) remote over a remote that is not defined: say which one."""
    if backend not in _WRAPPERS:
        return []
    key = f"RCLONE_CONFIG_{name.upper()}_REMOTE"
    inner = env.get(key, "").strip()
    password = f"RCLONE_CONFIG_{name.upper()}_PASSWORD"
    if backend == "crypt" and not env.get(password, "").strip():
        return [problem(f"{password} is not set, and the crypt remote '{name}' cannot encrypt or read anything "
                        f"without it: set it (and {password}2 if the archive was written with one) to the output "
                        "of `rclone obscure 'your password'`.")]
    if not inner:
        return [problem(f"{key} is not set, but the {backend} remote '{name}' stores everything in another remote: "
                        f"set it to that remote and a folder, such as mega:helix-encrypted.")]
    inner_name = inner.split(":", 1)[0] if ":" in inner else ""
    if not inner_name or inner_name.startswith(":") or (len(inner_name) == 1 and inner[2:3] in "/\\"):
        return []  # a local path or an on-the-fly backend: nothing to look up
    if _defined(inner_name, env):
        return []
    return [problem(f"{key} is '{inner}', but no remote '{inner_name}' is defined: define it with "
                    f"RCLONE_CONFIG_{inner_name.upper()}_TYPE and its options (or in {rclone_config_path(env)}), "
                    f"or set {key} to a remote that exists.")]


def check_archive(env: Mapping[str, str], sync: LazySync) -> list[Finding]:
    findings = check_rclone_config(env)
    if findings:
        return findings
    spec = env.get("HELIX_ARCHIVE", "").strip()
    if not spec:
        default = data_dir(env) / "archive"
        if sync.error or not data_dir(env).is_dir():
            return [ok("HELIX_ARCHIVE is not set: archives go to the archive/ folder under the data directory")]
        return check_local_archive(default, False, sync)
    if sync.error:
        return [sync.unavailable("HELIX_ARCHIVE")]
    try:
        root = sync.api.ArchiveRoot.parse(spec, data_dir(env) / "archive")
    except sync.api.SyncError as exc:
        return [problem(str(exc))]
    if root.folder is not None:
        return check_local_archive(root.folder, True, sync)
    if root.remote_name is None:
        return unknown_backend(root.backend or "", "HELIX_ARCHIVE", sync, env) or \
            [ok(f"HELIX_ARCHIVE {root.display} needs no remote definition")]
    name = root.remote_name
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    backend = env.get(prefix + "TYPE", "").strip()
    if backend:
        bad = unknown_backend(backend, f"{prefix}TYPE", sync, env)
        if bad:
            return bad
        findings = [ok(f"remote '{name}' is defined by {prefix}TYPE={backend}")]
        findings += _wrapped_remote(name, backend, env)
        if backend in _BUCKETED and not spec.split(":", 1)[1].strip("/"):
            findings.append(problem(f"HELIX_ARCHIVE {spec!r} names no bucket, and {backend} keeps everything in "
                                    f"buckets: add one after the colon, as in {name}:helix-archive."))
        for option in ("PASS", "PASSWORD", "PASSWORD2"):
            value = env.get(prefix + option, "").strip()
            if value and not looks_obscured(value):
                findings.append(problem(f"{prefix}{option} is not the output of `rclone obscure` (rclone would "
                                        f"fail to log in): set it to the output of `rclone obscure 'your password'`."))
        return findings
    conf = rclone_config_path(env)
    if env.get("RCLONE_CONFIG", "").strip() and not conf.is_file():
        return [problem(f"RCLONE_CONFIG points to {conf}, which does not exist: fix the path, or define the remote "
                        f"'{name}' with {prefix}TYPE and its options instead.")]
    if conf.is_file():
        try:
            text = conf.read_text(encoding="utf-8", errors="replace")
            if text.lstrip().startswith("# Encrypted rclone configuration File"):
                if env.get("RCLONE_CONFIG_PASS"):
                    return [warning(f"{conf} is encrypted, so the remote '{name}' could not be looked up here: "
                                    "run `python -m bot check --probe` to try it.")]
                return [problem(f"{conf} is encrypted and RCLONE_CONFIG_PASS is not set, so rclone cannot read it "
                                "without a terminal: set RCLONE_CONFIG_PASS.")]
            parser = configparser.ConfigParser(interpolation=None, strict=False, default_section="\0")
            parser.read_string(text)
        except (OSError, configparser.Error) as exc:
            return [problem(f"{conf} cannot be read as an rclone config ({type(exc).__name__}): fix the file, or "
                            f"define the remote '{name}' with {prefix}TYPE and its options instead.")]
        if name in parser.sections():
            return [ok(f"remote '{name}' is defined in {conf}")]
    how = (f"set {prefix}TYPE (e.g. {prefix}TYPE=mega) and its options ({prefix}USER, and {prefix}PASS "
           "from `rclone obscure`)")
    if not _ENV_NAME.match(name):
        how = (f"rename the remote to letters, digits and _ so it can be defined with {prefix}TYPE and its "
               "options")
    return [problem(f"HELIX_ARCHIVE names the remote '{name}', but no remote of that name is defined: {how}, "
                    f"or add a [{name}] section to {conf}.")]

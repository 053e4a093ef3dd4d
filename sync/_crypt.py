"""Noticing that a crypt archive is read with the wrong passwords, before Helix writes a second one.

With the wrong passwords the probe's round trip passes (it writes with the wrong key and reads back
with the same one), and Helix would archive everything again beside the first archive, which nobody
can read with the new key. What gives a wrong key away depends on how the crypt treats names:

- standard names: rclone skips every name it cannot decrypt, so the crypt lists fewer names than the
  remote under it holds;
- ``directory_name_encryption = false``: folders are listed whatever the key, and only the files in
  them go missing, so names are compared folder by folder on the way down;
- ``filename_encryption = obfuscate``: names "decode" to other names, which the crypt then cannot
  find when it encodes them back;
- ``filename_encryption = off``: names say nothing about the key.

Contents always do: crypt authenticates every block it decrypts, so one small file read through the
crypt fails with the wrong key. The check lists a few folders from the top down (never the whole
archive), compares names where the folder under the crypt is known, and reads one small file into
rclone's memory, where it is dropped at once. No password is read: the crypt's options are looked up
by key, and only ``type``, ``remote`` and the name-encryption modes ever leave this module.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from sync._remote import Remote
from sync.errors import ArchiveUnreadable, NotFoundError, SyncError

# The options this module may read; a crypt section also holds the passwords, which it never asks for.
_SAFE_OPTIONS = ("type", "remote", "filename_encryption", "directory_name_encryption")
_FALSE = ("false", "f", "0")  # rclone reads a boolean option with Go's strconv.ParseBool
_FOLDERS = 12  # crypt folders listed at most on the way down
_FAN_OUT = 3  # subfolders of each folder visited: Helix's files sit a few folders down, in more than one tree
_READ_LIMIT = 4 * 1024 * 1024  # a larger file is not read: the check must stay cheap at every start
_LIST_TIMEOUT_S = 60.0
_READ_TIMEOUT_S = 120.0
# crypt's own words when a block fails authentication (backend/crypt/cipher.go, ErrorEncryptedBadBlock).
_BAD_BLOCK = re.compile(r"failed to authenticate decrypted block", re.I)


@dataclass(frozen=True)
class CryptLayout:
    name: str  # the crypt remote's name, as HELIX_ARCHIVE writes it
    base: str  # the remote and folder under it (its ``remote`` option)
    from_env: bool  # defined by RCLONE_CONFIG_<NAME>_* rather than by an rclone.conf section
    plain_folders: bool = False  # folder names are stored as they are, so a folder's twin below is known

    def stored(self, folder: str) -> str | None:
        """Where ``folder`` of the crypt lies in the remote under it; None when only the key knows."""
        if folder and not self.plain_folders:
            return None
        sep = "" if not folder or self.base.endswith((":", "/")) else "/"
        return f"{self.base}{sep}{folder}"


def _env_key(name: str, option: str) -> str:
    return f"RCLONE_CONFIG_{name.upper().replace('-', '_').replace('.', '_')}_{option.upper()}"


async def crypt_layout(remote: Remote, extra_env: Mapping[str, str]) -> CryptLayout | None:
    """The crypt remote under the archive root and the remote it stores into; None when the archive
    is not a named crypt remote."""
    name = remote.root.remote_name
    if not name:
        return None
    env_options = {o: extra_env.get(_env_key(name, o), "").strip() for o in _SAFE_OPTIONS}
    options = dict(env_options)
    if not all(options.values()):
        # config/get answers with the whole section, passwords included: keep the safe keys, drop the rest now.
        with contextlib.suppress(SyncError):
            section = await remote.rc.call("config/get", {"name": name})
            for option in _SAFE_OPTIONS:
                options[option] = options[option] or str(section.get(option) or "").strip()
            del section
    if options["type"] != "crypt" or not options["remote"]:
        return None
    plain = (options["filename_encryption"].lower() == "off"
             or options["directory_name_encryption"].lower() in _FALSE)
    return CryptLayout(name, options["remote"], from_env=bool(env_options["type"]), plain_folders=plain)


async def _list(remote: Remote, fs: str, folder: str) -> list[dict]:
    out = await remote.rc.call("operations/list", {"fs": fs, "remote": folder, "opt": {"recurse": False}},
                               timeout_s=_LIST_TIMEOUT_S)
    return list(out.get("list") or [])


def _in_progress(name: object) -> bool:
    """An upload in progress or cut short (rclone's ``.partial``, Helix's ``.helix-partial-``): its name may
    be rclone's own rather than the crypt's, and its last block fails authentication whatever the key."""
    return "partial" in str(name).lower()


async def _stored_count(remote: Remote, fs: str) -> int:
    """How many entries a folder of the remote under the crypt holds; a folder that does not exist holds none."""
    try:
        return sum(not _in_progress(entry.get("Name")) for entry in await _list(remote, fs, ""))
    except NotFoundError:
        return 0


async def _shown(remote: Remote, layout: CryptLayout, folder: str) -> list[dict]:
    """What the crypt lists in ``folder``. The top may not exist yet (an empty archive); a folder the
    crypt listed itself and then cannot find is a name decoded with another key than it was written with."""
    try:
        return await _list(remote, f"{layout.name}:", folder)
    except NotFoundError:
        if not folder:
            return []
        raise _unreadable(layout, _ROUND_TRIP.format(base=layout.base)) from None


def _readable_file(entry: Mapping) -> bool:
    """A file worth reading: not empty (crypt authenticates blocks, and an empty file has none), small,
    and whole."""
    size = entry.get("Size")
    return (not entry.get("IsDir") and isinstance(size, int) and 0 < size <= _READ_LIMIT
            and not _in_progress(entry.get("Name")))


async def _read(remote: Remote, layout: CryptLayout, path: str) -> None:
    """Read one file through the crypt to its end. A copy into rclone's memory backend is the rc call, on
    every rclone Helix accepts, that reads a file and says why it failed; the copy is removed at once."""
    bucket = f"helix-crypt-check-{secrets.token_hex(4)}"
    try:
        await remote.rc.call("operations/copyfile", {"srcFs": f"{layout.name}:", "srcRemote": path,
                                                     "dstFs": ":memory:", "dstRemote": f"{bucket}/file"},
                             timeout_s=_READ_TIMEOUT_S)
    except NotFoundError:
        raise _unreadable(layout, _ROUND_TRIP.format(base=layout.base)) from None
    except SyncError as exc:
        if _BAD_BLOCK.search(exc.detail or ""):
            raise _unreadable(layout, _CONTENTS.format(base=layout.base)) from None
        raise  # the remote's own failure (down, refusing, slow): it says nothing about the key
    # Only a copy that succeeded left something (a failed one stores nothing, and purging nothing is logged).
    with contextlib.suppress(SyncError):
        await remote.rc.call("operations/purge", {"fs": ":memory:", "remote": bucket})


async def check_crypt_readable(remote: Remote, extra_env: Mapping[str, str]) -> None:
    """Raise ArchiveUnreadable when a crypt archive's passwords are not the ones it was written with.

    Lists at most a few folders from the top, breadth first, comparing each with its twin in the remote
    under the crypt where that is known, until a small file turns up; then reads that one file. An empty
    archive passes, and so does one whose first folders hold no small file (nothing cheap to read)."""
    layout = await crypt_layout(remote, extra_env)
    if layout is None:
        return
    folders = deque([""])
    for _ in range(_FOLDERS):
        if not folders:
            return
        folder = folders.popleft()
        shown = await _shown(remote, layout, folder)
        twin = layout.stored(folder)
        if twin is not None:
            stored = await _stored_count(remote, twin)
            if stored > len(shown):
                raise _unreadable(layout, _hidden(layout, folder, len(shown), stored - len(shown)))
        files = [entry for entry in shown if _readable_file(entry)]
        if files:
            await _read(remote, layout, min(files, key=lambda entry: entry["Size"])["Path"])
            return
        folders.extend([entry["Path"] for entry in shown if entry.get("IsDir")][:_FAN_OUT])


_ROUND_TRIP = "decrypts the names in the remote under it ('{base}') into names it then cannot find there"
_CONTENTS = "lists the files in the remote under it ('{base}') but cannot decrypt their contents"


def _hidden(layout: CryptLayout, folder: str, shown: int, hidden: int) -> str:
    seen = "shows nothing" if shown == 0 else f"shows {shown} entr{'y' if shown == 1 else 'ies'}"
    inside, there = (f" in its folder '{folder}'", " there") if folder else ("", "")
    plural = "s" if hidden != 1 else ""
    return (f"{seen}{inside}, but the remote under it ('{layout.base}') holds {hidden} more file{plural} "
            f"or folder{plural}{there} it cannot decrypt")


def _unreadable(layout: CryptLayout, what: str) -> ArchiveUnreadable:
    """The operator's sentence: what the crypt did, which settings to fix, and the way to a new archive."""
    if layout.from_env:
        keys = f"{_env_key(layout.name, 'password')} (and {_env_key(layout.name, 'password2')}, if it was set)"
        where = _env_key(layout.name, "remote")
    else:
        keys = f"the password and password2 of the [{layout.name}] section of the rclone config"
        where = f"the remote option of [{layout.name}]"
    return ArchiveUnreadable(
        f"The archive remote '{layout.name}' {what}: {keys} do not match the ones this archive was written with; "
        f"set them back, or point {where} at a new, empty folder to start a new archive.")

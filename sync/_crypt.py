"""Noticing that a crypt archive is read with the wrong passwords, before Helix writes a second one.

rclone's crypt backend skips every name it cannot decrypt, so with the wrong password the archive
lists as empty, the probe's round trip passes (it writes with the wrong key and reads back with the
same one), and Helix archives everything again beside the first archive, which nobody can read
with the new key. The one visible sign is in the remote under the crypt: it holds names the crypt
listing does not show. Only names are compared, so nothing is decrypted and no password is read:
the crypt's options are looked up by key, and only ``type``, ``remote`` and the name-encryption
mode ever leave this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from sync._remote import Remote
from sync.errors import ArchiveUnreadable, NotFoundError, SyncError

# The options this module may read; a crypt section also holds the passwords, which it never asks for.
_SAFE_OPTIONS = ("type", "remote", "filename_encryption")


@dataclass(frozen=True)
class CryptLayout:
    name: str  # the crypt remote's name, as HELIX_ARCHIVE writes it
    base: str  # the remote and folder under it (its ``remote`` option)
    from_env: bool  # defined by RCLONE_CONFIG_<NAME>_* rather than by an rclone.conf section


def _env_key(name: str, option: str) -> str:
    return f"RCLONE_CONFIG_{name.upper().replace('-', '_').replace('.', '_')}_{option.upper()}"


async def crypt_layout(remote: Remote, extra_env: Mapping[str, str]) -> CryptLayout | None:
    """The crypt remote under the archive root and the remote it stores into; None when the archive
    is not a crypt whose names are encrypted (then names say nothing about the password)."""
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
    if options["type"] != "crypt" or not options["remote"] or options["filename_encryption"] == "off":
        return None
    return CryptLayout(name, options["remote"], from_env=bool(env_options["type"]))


async def _names(remote: Remote, fs: str) -> int:
    """How many entries the top of ``fs`` holds; a folder that does not exist holds none."""
    try:
        out = await remote.rc.call("operations/list", {"fs": fs, "remote": "", "opt": {"recurse": False}},
                                   timeout_s=60.0)
    except NotFoundError:
        return 0
    return len(out.get("list") or [])


async def check_crypt_readable(remote: Remote, extra_env: Mapping[str, str]) -> None:
    """Raise ArchiveUnreadable when the remote under a crypt archive holds names the crypt cannot decrypt."""
    layout = await crypt_layout(remote, extra_env)
    if layout is None:
        return
    shown = await _names(remote, f"{layout.name}:")
    stored = await _names(remote, layout.base)
    if stored <= shown:
        return
    hidden = stored - shown
    if layout.from_env:
        keys = f"{_env_key(layout.name, 'password')} (and {_env_key(layout.name, 'password2')}, if it was set)"
        where = _env_key(layout.name, "remote")
    else:
        keys = f"the password and password2 of the [{layout.name}] section of the rclone config"
        where = f"the remote option of [{layout.name}]"
    seen = "shows nothing" if shown == 0 else f"shows {shown} entr{'y' if shown == 1 else 'ies'}"
    raise ArchiveUnreadable(
        f"The archive remote '{layout.name}' {seen}, but the remote under it ('{layout.base}') holds {hidden} "
        f"more file{'s' if hidden != 1 else ''} or folder{'s' if hidden != 1 else ''} it cannot decrypt: {keys} "
        "do not match the ones this archive was written with; set them back, or point "
        f"{where} at a new, empty folder to start a new archive.")

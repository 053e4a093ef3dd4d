"""Archive roots and the relative paths inside them.

Paths reach rclone only as JSON fields of rc calls, never through a shell or argv, but they
are still validated: a path that climbs out of the root (``..``), is absolute, looks like a
flag (leading ``-``), or carries backslashes or control characters is refused with a sentence,
because no legitimate archive name needs them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sync.errors import PathError

MAX_PATH_CHARS = 1024
_NAMED_REMOTE = re.compile(r"^(?P<name>[\w][\w.+@ -]*):(?P<path>.*)$", re.DOTALL)
_BACKEND = re.compile(r"^:([a-z0-9]+)")


def _split_on_the_fly(spec: str) -> tuple[str, str] | None:
    """Split ``:backend,opt='v:w',x=y:path`` into (backend, path), honouring rclone's quoting."""
    match = _BACKEND.match(spec)
    if not match:
        return None
    i, quote = match.end(), None
    while i < len(spec):
        ch = spec[i]
        if quote:
            if ch == quote:
                if spec[i + 1:i + 2] == quote:  # a doubled quote is a literal quote
                    i += 1
                else:
                    quote = None
        elif ch in "'\"" and spec[i - 1] == "=":
            quote = ch
        elif ch == ":":
            return match.group(1), spec[i + 1:]
        i += 1
    return None


@dataclass(frozen=True)
class ArchiveRoot:
    """Where archives go: ``fs`` is what rclone receives; ``display`` is safe to show."""

    fs: str
    display: str
    remote_name: str | None
    backend: str | None
    is_local: bool

    @property
    def folder(self) -> Path | None:
        """The folder on this machine when the archive is a plain path; ``None`` for any rclone
        connection string, ``:local:`` included, whose path rclone alone interprets."""
        if self.is_local and self.remote_name is None and not self.fs.startswith(":"):
            return Path(self.fs)
        return None

    @classmethod
    def parse(cls, spec: str, default_dir: Path) -> ArchiveRoot:
        """Parse HELIX_ARCHIVE; an empty value means the embedded local folder."""
        spec = spec.strip()
        if not spec:
            folder = default_dir.resolve()
            return cls(fs=str(folder), display=str(folder), remote_name=None, backend="local", is_local=True)
        _check_chars(spec, "HELIX_ARCHIVE")
        fly = _split_on_the_fly(spec)
        if fly:
            # On-the-fly remotes carry their options (possibly a password) inline: never display them.
            backend, path = fly
            _check_spaces(f":{backend}:{path}", path)
            return cls(fs=spec, display=f":{backend}:{path}", remote_name=None,
                       backend=backend, is_local=backend == "local")
        if spec.startswith(":"):
            # Its options may carry a password, or a URL with one: repeat nothing after the first comma.
            head, comma, _ = spec.partition(",")
            shown = f"'{head}{',…' if comma else ''}'"
            if _BACKEND.match(spec):
                open_ = shown[:-1]
                raise PathError(f"HELIX_ARCHIVE {shown} is neither a folder nor a remote, as its :path is missing "
                                "after the backend's options (or a quote in them is left open): end it with the "
                                f"folder to archive into, as in {open_}:helix' ({open_}:' for its top folder).")
            raise PathError(f"HELIX_ARCHIVE {shown} is neither a folder nor a remote: give a folder such as "
                            "/data/archive, a remote such as mega:helix, or a backend such as :s3:bucket.")
        named = _NAMED_REMOTE.match(spec)
        if named and len(named.group("name")) == 1 and spec[2:3] in ("\\", "/") and os.sep == "/":
            # On Windows this is a drive; here rclone would take it as a folder named "C:" where Helix runs.
            raise PathError(f"HELIX_ARCHIVE {spec!r} looks like a Windows path: on this system give a folder such "
                            "as /data/archive, or a remote such as mega:helix.")
        if named and not (len(named.group("name")) == 1 and spec[2:3] in ("\\", "/")):
            name = named.group("name")
            _check_spaces(spec, named.group("path"))
            return cls(fs=spec, display=spec, remote_name=name, backend=None, is_local=False)
        folder = Path(spec).expanduser().resolve()
        return cls(fs=str(folder), display=str(folder), remote_name=None, backend="local", is_local=True)


def _check_spaces(shown: str, path: str) -> None:
    """Refuse a folder name that starts or ends with a space (``dav: arch``), rather than strip it.

    rclone keeps the space, so the archive would land in a folder named " arch" that nobody sees in a
    listing; stripping it silently would instead move an archive that was already written there.
    Refusing makes the operator choose, once."""
    for part in path.split("/"):
        if part != part.strip():
            fixed = "/".join(p.strip() for p in path.split("/"))
            raise PathError(f"HELIX_ARCHIVE {shown!r} has a folder name starting or ending with a space "
                            f"({part!r}), which rclone would keep: write it without, as in "
                            f"{shown[: len(shown) - len(path)]}{fixed}.")


def _check_chars(value: str, what: str) -> None:
    for ch in value:
        if ch == "\0":
            raise PathError(f"{what} contains a NUL byte: remove it.")
        if ord(ch) < 32 or ord(ch) == 127:
            raise PathError(f"{what} contains a control character ({ord(ch):#04x}): remove it.")


def clean_relative(path: str, what: str = "The archive path") -> str:
    """Return ``path`` as a normalised relative path, or raise PathError with the reason."""
    if not isinstance(path, str) or not path.strip():
        raise PathError(f"{what} is empty: give a relative path such as rituals/2026/ritual.png.")
    if len(path) > MAX_PATH_CHARS:
        raise PathError(f"{what} is {len(path)} characters long; keep it under {MAX_PATH_CHARS}.")
    _check_chars(path, what)
    if "\\" in path:
        raise PathError(f"{what} {path!r} contains a backslash: use / between folders.")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise PathError(f"{what} {path!r} is absolute: give a path relative to the archive root.")
    parts = path.split("/")
    cleaned: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            raise PathError(f"{what} {path!r} climbs out of the archive root with '..': remove it.")
        if len(part.encode()) > 255:
            raise PathError(f"{what} has a part longer than 255 bytes, more than most storage accepts: shorten it.")
        if part.startswith("-"):
            raise PathError(f"{what} {path!r} has a part starting with '-': rename it.")
        cleaned.append(part)
    if not cleaned:
        raise PathError(f"{what} {path!r} names no file: give a relative path such as rituals/ritual.png.")
    return "/".join(cleaned)

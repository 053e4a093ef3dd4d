"""Where a restore may write: DEST checked before the archive is asked anything and before anything
is created, so an operator's slip (the filesystem's root, the home folder, a folder holding
someone's files) costs nothing. A restore spreads index.html, blobs/, discord/ and files/ over
DEST's top; only an earlier restore of the same channel, which a re-run resumes, may be there.
"""

from __future__ import annotations

from pathlib import Path

from render.restore_index import MARK

PROBE = ".helix-restore-probe"
# What a restore writes at DEST's top: a folder holding only these may be an earlier restore to resume.
WRITTEN = frozenset({"index.html", "discord", "blobs", "files", PROBE})


class RestoreError(ValueError):
    """What to restore cannot be found or understood; ``str(err)`` is one sentence with the fix."""


class DestinationError(RestoreError):
    """DEST cannot take the restore; ``str(err)`` names it and the fix (the archive is not at fault)."""


def check_destination(dest: Path) -> Path:
    """DEST resolved, once the operator's mistakes about where it is are ruled out: said as such
    before the archive is asked anything (a CLI may call it before it even starts the archive) and
    before anything is created: a file, the filesystem's root or the home folder (a restore
    spreads index.html, blobs/, discord/ and files/ over DEST's top), someone else's index.html."""
    try:
        dest = dest.expanduser().resolve()
        for path in (dest, *dest.parents):
            if path.exists():
                if not path.is_dir():
                    raise DestinationError(f"{path} is a file, not a folder: choose a folder to restore into "
                                           "(a new one is created).")
                break
        if dest == Path(dest.anchor):
            raise DestinationError(f"DEST {dest} is the root of the filesystem, where a restore would spread its "
                                   "index.html, blobs/, discord/ and files/: give a new folder instead, for "
                                   "example ./restored.")
        if dest == _home():
            raise DestinationError(f"DEST {dest} is your home folder, where a restore would spread its index.html, "
                                   f"blobs/, discord/ and files/: give a new folder instead, for example "
                                   f"{dest / 'restored'}.")
        index = dest / "index.html"
        if index.is_file() and MARK not in index.read_text("utf-8", errors="replace"):
            raise DestinationError(f"{dest} already has an index.html that Helix did not write: choose another "
                                   "folder, or move that file away first.")
    except OSError as exc:
        raise _unwritable(dest, exc) from None
    return dest


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry: there is no home to protect
        return None


def check_contents(dest: Path, guild_id: int, channel_id: int, threads: list[str]) -> None:
    """A DEST that already holds something is refused unless it is an earlier restore of this same
    channel, which a re-run resumes (after a Ctrl-C there is no index.html yet, only what was
    fetched): what else is there is someone's, and would be mixed with the channel's pages."""
    try:
        if not dest.is_dir():
            return
        stranger = _not_ours(dest, str(guild_id), {str(channel_id), *threads})
    except OSError as exc:
        raise _unwritable(dest, exc) from None
    if stranger is not None:
        raise DestinationError(f"DEST {dest} is not empty and is not an earlier restore of {guild_id}/"
                               f"{channel_id} (it holds {stranger}): give a new or empty folder "
                               "(a new one is created), or move what is in it away first.")


def _not_ours(dest: Path, guild: str, channel_ids: set[str]) -> str | None:
    """The first thing in ``dest`` a restore of ``channel_ids`` would not have written, if any."""
    expected = {dest: WRITTEN, dest / "discord": {guild}, dest / "discord" / guild: channel_ids,
                dest / "blobs": {"sha256"}}
    for folder, names in expected.items():
        if not folder.exists():
            continue
        if not folder.is_dir():
            return folder.relative_to(dest).as_posix()
        for child in sorted(folder.iterdir()):
            own_file = folder == dest and child.name in ("index.html", PROBE)
            if child.name not in names or not (own_file or child.is_dir()):
                return child.relative_to(dest).as_posix()
    return None


def check_writable(dest: Path) -> None:
    probe = dest / PROBE
    try:
        dest.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _unwritable(dest, exc) from None


def _unwritable(dest: Path, exc: OSError) -> DestinationError:
    return DestinationError(f"cannot write DEST {dest} ({exc.strerror or exc}): choose a writable folder.")

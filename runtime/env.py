"""Reading the environment: ``.env`` loaded in one place, and one parser per kind of value.

Every parser raises ``BadSetting`` with one sentence naming the variable and what it accepts;
``EnvProblems`` collects those sentences so an operator fixes every bad variable at once, not
one per deploy. Only the standard library is imported up front: the preflight uses this module
before it knows whether the third-party packages are installed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
DEFAULT_DOTENV = Path(".env")
# A Discord id is a snowflake: an unsigned 64-bit number, and never 0.
MAX_ID = 2**64 - 1
_ASCII_INT = re.compile(r"[+-]?[0-9]+")
_ASCII_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


# Every HELIX_* variable some part of Helix reads (tests/runtime keeps this equal to the code): a name
# outside it is a typo that would otherwise be ignored in silence, the archive going to the default.
KNOWN_SETTINGS = frozenset({
    "HELIX_ADMIN_ROLE_IDS", "HELIX_ADMIN_USER_IDS", "HELIX_ARCHIVE", "HELIX_ARCHIVIST_ROLE_IDS",
    "HELIX_BACKUP_CONCURRENCY", "HELIX_BWLIMIT", "HELIX_CONNECT_TIMEOUT_S", "HELIX_DATA_DIR",
    "HELIX_DISCORD_API_BASE", "HELIX_DISCORD_GATEWAY", "HELIX_DISCORD_RETRY_CAP_S", "HELIX_GET_UPLOAD_MB",
    "HELIX_GUILD_ID", "HELIX_HEARTBEAT_CHANNEL_ID", "HELIX_HEARTBEAT_MINUTES", "HELIX_IO_TIMEOUT_S",
    "HELIX_KEEP_DELETED", "HELIX_KEEP_LOCAL", "HELIX_LOW_LEVEL_RETRIES", "HELIX_MAX_ATTACHMENT_MB",
    "HELIX_MAX_CONCURRENT", "HELIX_NO_HEALTH", "HELIX_OP_TIMEOUT_S", "HELIX_OUTBOX_RETRY_BASE_S",
    "HELIX_OUTBOX_RETRY_CAP_S", "HELIX_OWNER_IDS", "HELIX_PREFIX", "HELIX_RETRIES", "HELIX_RETRY_BASE_S",
    "HELIX_RITUAL_COOLDOWN_S", "HELIX_RITUAL_MAX_STEPS", "HELIX_SPOOL_MAX_GB", "HELIX_STOP_GRACE_S",
    "HELIX_TRANSFERS", "HELIX_WATCH_FLUSH_S",
})


def unknown_settings(env: Mapping[str, str]) -> list[str]:
    """One sentence per HELIX_* name Helix does not read, with the closest name it does read."""
    import difflib

    sentences = []
    for name in sorted(k for k in env if k.upper().startswith("HELIX_") and k not in KNOWN_SETTINGS):
        close = difflib.get_close_matches(name.upper(), KNOWN_SETTINGS, n=1, cutoff=0.6)
        fix = f"did you mean {close[0]}?" if close else "see the README's Configuration table for the names it reads."
        sentences.append(f"{name} is set but Helix reads no such variable, so it is ignored: {fix}")
    return sentences


class BadSetting(ValueError):
    """A variable has a value Helix cannot use; ``str(err)`` is the sentence for the operator."""


def environment(env: Mapping[str, str] | None = None, dotenv: str | os.PathLike[str] | None = DEFAULT_DOTENV,
                ) -> dict[str, str]:
    """The process environment (or ``env``) over the values of a ``.env`` file, which fills only gaps.

    The result is a plain mapping handed to the settings; nothing is written into ``os.environ``.
    A ``.env`` that cannot be read, or is not UTF-8, raises ``BadSetting`` naming the file and the fix.
    """
    merged: dict[str, str] = {}
    if dotenv is not None and Path(dotenv).is_file():
        from dotenv import dotenv_values  # third-party: imported only when there is a file to read

        shown = Path(dotenv).absolute()
        try:
            values = dotenv_values(dotenv, encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise BadSetting(f"{shown} is not UTF-8 text (its byte {exc.object[exc.start]:#04x} is not valid there, "
                             "as in a file saved as Latin-1 or Windows-1252): save it again as UTF-8 in your "
                             "editor.") from None
        except OSError as exc:
            raise BadSetting(f"{shown} cannot be read ({exc.strerror or type(exc).__name__}): make it readable "
                             "by the user Helix runs as, or move it away and set its variables in the "
                             "environment.") from None
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ if env is None else env)
    return merged


class EnvProblems:
    """Every bad variable of one start; parsers called through ``read`` record their sentence."""

    def __init__(self) -> None:
        self.sentences: list[str] = []

    def read(self, parse: Callable[..., T], env: Mapping[str, str], name: str, default: T, *args: object) -> T:
        try:
            return parse(env, name, default, *args)
        except BadSetting as exc:
            self.sentences.append(str(exc))
            return default

    def raise_all(self, error: Callable[[str], Exception] = BadSetting) -> None:
        """Raise ``error`` with one line per bad variable, if there was any."""
        if self.sentences:
            raise error("\n".join(dict.fromkeys(self.sentences)))


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    # int() also takes other scripts' digits (١٢٣) and underscores (1_000): nobody means those here.
    if not _ASCII_INT.fullmatch(raw):
        raise BadSetting(f"{name} must be a whole number from {lo} to {hi}, not {raw!r}.")
    value = int(raw)
    if not lo <= value <= hi:
        raise BadSetting(f"{name} must be a whole number from {lo} to {hi}, not {value}.")
    return value


_UNITS = {"_S": "a number of seconds", "_GB": "a number of GB", "_MB": "a number of MB"}


def env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    # The unit is in the variable's name (HELIX_WATCH_FLUSH_S, HELIX_SPOOL_MAX_GB): the sentence says it.
    what = next((unit for suffix, unit in _UNITS.items() if name.endswith(suffix)), "a number")
    if not _ASCII_FLOAT.fullmatch(raw):
        raise BadSetting(f"{name} must be {what} from {lo:g} to {hi:g}, not {raw!r}.")
    value = float(raw)
    if not lo <= value <= hi:
        raise BadSetting(f"{name} must be {what} from {lo:g} to {hi:g}, not {value:g}.")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise BadSetting(f"{name} must be 1 or 0 (or true/false), not {raw!r}.")


def _discord_id(part: str) -> int | None:
    """``part`` as a Discord id: ASCII digits only, from 1 to 2**64 - 1; None when it is not one."""
    if not (part.isascii() and part.isdigit()) or len(part) > 20:
        return None
    value = int(part)
    return value if 0 < value <= MAX_ID else None


def _parts(env: Mapping[str, str], name: str) -> list[str]:
    raw = env.get(name, "").replace(";", ",").replace(" ", ",")
    return [p for p in (p.strip() for p in raw.split(",")) if p]


def env_ids(env: Mapping[str, str], name: str, default: frozenset[int] = frozenset()) -> frozenset[int]:
    """A comma-separated list of Discord ids (snowflakes)."""
    out: set[int] = set()
    for part in _parts(env, name):
        value = _discord_id(part)
        if value is None:
            raise BadSetting(f"{name} must be a comma-separated list of Discord ids (numbers from 1 to "
                             f"{MAX_ID} in digits 0-9), and {part[:30]!r} is not one.")
        out.add(value)
    return frozenset(out) or default


def env_one_id(env: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    """One Discord id (a channel, a server): the sentence says one id, not a list."""
    parts = _parts(env, name)
    if len(parts) > 1:
        raise BadSetting(f"{name} takes one Discord id, not {len(parts)}.")
    if not parts:
        return default
    value = _discord_id(parts[0])
    if value is None:
        raise BadSetting(f"{name} must be one Discord id (a number from 1 to {MAX_ID} in digits 0-9; in Discord, "
                         f"right-click it → Copy ID), not {parts[0][:30]!r}.")
    return value


def env_url(env: Mapping[str, str], name: str, default: str | None, schemes: tuple[str, ...],
            example: str) -> str | None:
    """A URL with one of ``schemes`` and a host. The value is not repeated: a URL may hold a password."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw)
        # Reading .port raises ValueError for a port that is not a number from 0 to 65535.
        ok = parts.scheme.lower() in schemes and bool(parts.hostname) and parts.port != 0
    except ValueError:  # that port, or an unclosed [ in the host
        ok = False
    if not ok:
        raise BadSetting(f"{name} must be a URL beginning {' or '.join(f'{s}://' for s in schemes)}, with a host "
                         f"(and any port from 1 to 65535), such as {example}.")
    return raw


def env_path(env: Mapping[str, str], name: str, default: str) -> Path:
    """A folder or file path; relative paths stay relative to where Helix runs."""
    return Path(env.get(name, "").strip() or default)


def data_dir(env: Mapping[str, str]) -> Path:
    """HELIX_DATA_DIR: Helix's local state (the outbox, files waiting, the default archive folder)."""
    return env_path(env, "HELIX_DATA_DIR", "data")

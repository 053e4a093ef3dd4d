"""Reading the environment: ``.env`` loaded in one place, and one parser per kind of value.

Every parser raises ``BadSetting`` with one sentence naming the variable and what it accepts;
``EnvProblems`` collects those sentences so an operator fixes every bad variable at once, not
one per deploy. Only the standard library is imported up front: the preflight uses this module
before it knows whether the third-party packages are installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
DEFAULT_DOTENV = Path(".env")


class BadSetting(ValueError):
    """A variable has a value Helix cannot use; ``str(err)`` is the sentence for the operator."""


def environment(env: Mapping[str, str] | None = None, dotenv: str | os.PathLike[str] | None = DEFAULT_DOTENV,
                ) -> dict[str, str]:
    """The process environment (or ``env``) over the values of a ``.env`` file, which fills only gaps.

    The result is a plain mapping handed to the settings; nothing is written into ``os.environ``.
    """
    merged: dict[str, str] = {}
    if dotenv is not None and Path(dotenv).is_file():
        from dotenv import dotenv_values  # third-party: imported only when there is a file to read

        merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
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
    try:
        value = int(raw)
    except ValueError:
        raise BadSetting(f"{name} must be a whole number from {lo} to {hi}, not {raw!r}.") from None
    if not lo <= value <= hi:
        raise BadSetting(f"{name} must be a whole number from {lo} to {hi}, not {value}.")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadSetting(f"{name} must be a number of seconds from {lo:g} to {hi:g}, not {raw!r}.") from None
    if not lo <= value <= hi:
        raise BadSetting(f"{name} must be a number of seconds from {lo:g} to {hi:g}, not {value:g}.")
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


def env_ids(env: Mapping[str, str], name: str, default: frozenset[int] = frozenset()) -> frozenset[int]:
    """A comma-separated list of Discord ids (snowflakes)."""
    raw = env.get(name, "").replace(";", ",").replace(" ", ",")
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in raw.split(","))):
        if not part.isdigit() or len(part) > 20:
            raise BadSetting(f"{name} must be a comma-separated list of Discord ids (numbers), "
                             f"and {part[:30]!r} is not one.")
        out.add(int(part))
    return frozenset(out) or default


def env_one_id(env: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    ids = env_ids(env, name)
    if len(ids) > 1:
        raise BadSetting(f"{name} takes one Discord id, not {len(ids)}.")
    return next(iter(ids), default)


def env_path(env: Mapping[str, str], name: str, default: str) -> Path:
    """A folder or file path; relative paths stay relative to where Helix runs."""
    return Path(env.get(name, "").strip() or default)


def data_dir(env: Mapping[str, str]) -> Path:
    """HELIX_DATA_DIR: Helix's local state (the outbox, files waiting, the default archive folder)."""
    return env_path(env, "HELIX_DATA_DIR", "data")

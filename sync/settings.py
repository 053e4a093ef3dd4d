"""Settings of the archiving layer, read once from the environment and validated.

A bad value is reported as one sentence naming the variable and what it accepts, at start-up,
instead of surfacing later as an rclone error nobody can place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime.env import EnvProblems, data_dir, env_bool, env_float, env_int
from sync.errors import ConfigError

_BWLIMIT = re.compile(r"^(off|\d+(\.\d+)?[BKMGTP]?)$", re.IGNORECASE)


@dataclass(frozen=True)
class SyncSettings:
    """What the sync service needs; see the README's table for each variable."""

    archive: str = ""
    data_dir: Path = Path("data")
    rclone_binary: str | None = None
    bwlimit: str | None = None
    transfers: int = 4
    retries: int = 3
    retry_base_s: float = 1.0
    retry_cap_s: float = 60.0
    low_level_retries: int = 10
    io_timeout_s: float = 60.0
    connect_timeout_s: float = 15.0
    op_timeout_s: float = 3600.0
    max_concurrent: int = 4
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # The outbox retries across restarts on a slower clock than one archive call's own retries.
    outbox_retry_base_s: float = 2.0
    outbox_retry_cap_s: float = 120.0
    keep_local: bool = False

    @property
    def archive_dir(self) -> Path:
        """The embedded default remote: a plain folder, so a fresh machine needs no account."""
        return self.data_dir / "archive"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, problems: EnvProblems | None = None) -> SyncSettings:
        """Raise one ConfigError naming every bad variable; with ``problems``, record them there instead."""
        env = os.environ if env is None else env
        own = problems is None
        p = EnvProblems() if problems is None else problems
        bwlimit = env.get("HELIX_BWLIMIT", "").strip() or None
        if bwlimit is not None and not _BWLIMIT.match(bwlimit):
            p.sentences.append(f"HELIX_BWLIMIT must be a rate such as 10M, 512K or off, not {bwlimit!r}.")
            bwlimit = None
        settings = cls(
            archive=env.get("HELIX_ARCHIVE", "").strip(),
            data_dir=data_dir(env),
            rclone_binary=env.get("RCLONE_BINARY", "").strip() or None,
            bwlimit=None if bwlimit in (None, "off", "OFF") else bwlimit,
            transfers=p.read(env_int, env, "HELIX_TRANSFERS", 4, 1, 64),
            retries=p.read(env_int, env, "HELIX_RETRIES", 3, 0, 20),
            retry_base_s=p.read(env_float, env, "HELIX_RETRY_BASE_S", 1.0, 0.0, 600.0),
            low_level_retries=p.read(env_int, env, "HELIX_LOW_LEVEL_RETRIES", 10, 1, 100),
            io_timeout_s=p.read(env_float, env, "HELIX_IO_TIMEOUT_S", 60.0, 1.0, 3600.0),
            connect_timeout_s=p.read(env_float, env, "HELIX_CONNECT_TIMEOUT_S", 15.0, 1.0, 600.0),
            op_timeout_s=p.read(env_float, env, "HELIX_OP_TIMEOUT_S", 3600.0, 1.0, 86400.0),
            max_concurrent=p.read(env_int, env, "HELIX_MAX_CONCURRENT", 4, 1, 32),
            outbox_retry_base_s=p.read(env_float, env, "HELIX_OUTBOX_RETRY_BASE_S", 2.0, 0.0, 3600.0),
            outbox_retry_cap_s=p.read(env_float, env, "HELIX_OUTBOX_RETRY_CAP_S", 120.0, 1.0, 86400.0),
            keep_local=p.read(env_bool, env, "HELIX_KEEP_LOCAL", False),
            # rclone reads its remotes (RCLONE_CONFIG_*) from its own environment: hand it the ones
            # this mapping holds, which may come from .env rather than the process environment.
            extra_env={k: v for k, v in env.items() if k.startswith("RCLONE_")},
        )
        if own:
            p.raise_all(ConfigError)
        return settings

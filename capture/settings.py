"""Settings of the capture engine, parsed with runtime's parsers and composed into the bot's Settings.

Each limit is a setting because each is a trade an operator makes: disk for speed
(``HELIX_SPOOL_MAX_GB``), completeness for storage (``HELIX_MAX_ATTACHMENT_MB``), members'
privacy for completeness (``HELIX_KEEP_DELETED``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.env import EnvProblems, env_bool, env_float, env_ids, env_int

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class CaptureSettings:
    max_attachment_bytes: int = 500 * MB
    spool_max_bytes: int = 10 * GB
    backup_concurrency: int = 2
    watch_flush_s: float = 60.0
    keep_deleted: bool = False
    archivist_role_ids: frozenset[int] = frozenset()
    segment_records: int = 1000  # lines per segment: a day of a busy channel, a few hundred KB
    downloads_per_page: int = 4  # attachments of one history page fetched at once
    catch_up_retry_s: float = 30.0  # a failed catch-up is asked for again after this, doubling up to 32×

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, problems: EnvProblems | None = None) -> CaptureSettings:
        env = os.environ if env is None else env
        own = problems is None
        p = EnvProblems() if problems is None else problems
        settings = cls(
            max_attachment_bytes=p.read(env_int, env, "HELIX_MAX_ATTACHMENT_MB", 500, 1, 1_000_000) * MB,
            spool_max_bytes=int(p.read(env_float, env, "HELIX_SPOOL_MAX_GB", 10.0, 0.01, 100_000.0) * GB),
            backup_concurrency=p.read(env_int, env, "HELIX_BACKUP_CONCURRENCY", 2, 1, 32),
            watch_flush_s=p.read(env_float, env, "HELIX_WATCH_FLUSH_S", 60.0, 0.1, 86_400.0),
            keep_deleted=p.read(env_bool, env, "HELIX_KEEP_DELETED", False),
            archivist_role_ids=p.read(env_ids, env, "HELIX_ARCHIVIST_ROLE_IDS", frozenset()),
        )
        if own:
            p.raise_all()
        return settings

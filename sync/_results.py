"""What archiving answers with: where a file landed and how it was checked, and the remote itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchiveResult:
    rel_path: str
    remote_path: str
    size: int
    sha256: str
    verified: str  # the hash type compared with the remote's, or "size" where the backend has none
    duration_s: float


@dataclass(frozen=True)
class RemoteInfo:
    remote: str
    backend: str
    rclone_version: str
    total_bytes: int | None
    used_bytes: int | None
    free_bytes: int | None

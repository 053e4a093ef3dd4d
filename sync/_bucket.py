"""Bucket-based backends: their top level is a list of buckets, not a folder Helix can write in."""

from __future__ import annotations

from sync._remote import Remote
from sync.errors import ConfigError

BUCKETED_BACKENDS = frozenset({"s3", "gcs", "b2", "azureblob", "swift", "oracleobjectstorage", "qingstor", "storj"})


async def check_bucket(remote: Remote) -> None:
    """Refuse ``s3:`` (a bucket-based backend with no bucket): rclone would take each top folder
    (``uploads``, ``rituals``, ``discord``) for a bucket of its own and try to create it."""
    root = remote.root
    if root.folder is not None or root.display.rsplit(":", 1)[-1].strip("/"):
        return
    backend = await remote.backend_type()
    if backend in BUCKETED_BACKENDS:
        shown = root.display.rstrip(":/")
        raise ConfigError(f"HELIX_ARCHIVE '{root.display}' names no bucket, and {backend} keeps everything in "
                          f"buckets: add one after the colon, as in {shown}:helix-archive "
                          f"(or {shown}:helix-archive/prefix).")

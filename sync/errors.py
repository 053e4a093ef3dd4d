"""Typed errors that carry one sentence for people.

Every failure a user or operator can cause ends up as one of these. ``str(err)`` is the
sentence (problem + fix) and is safe to show in Discord or a terminal; ``detail`` holds the
raw rclone text for the logs. Neither ever contains a credential: rc error texts echo only
the operation's parameters, and Helix never puts secrets in those.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every archiving failure; its class says what the outbox does about it.

    ``retryable``: try the same item again later (the remote may come back). ``remote_wide``: a
    permanent failure that says nothing about one item and everything about the remote (a wrong
    password, a full quota), so every waiting item fails with it at once instead of each paying
    for its own failed login.
    """

    retryable: bool = False
    remote_wide: bool = False
    kind: str = "error"

    def __init__(self, hint: str, *, detail: str | None = None) -> None:
        super().__init__(hint)
        self.hint = hint
        self.detail = detail


class ConfigError(SyncError):
    kind = "config"
    remote_wide = True


class LocalDiskFull(ConfigError):
    """Copying from the archive failed for want of room on this machine's disk: no retry frees it,
    and blaming the remote would send the operator to the wrong machine."""

    kind = "local_disk_full"


class ArchiveUnreadable(ConfigError):
    """The archive is there but these settings cannot read it (a crypt remote's passwords changed):
    writing on would start a second archive beside the first, so nothing is written until it is fixed."""

    kind = "archive_unreadable"


class BinaryError(SyncError):
    kind = "binary"
    remote_wide = True


class PathError(SyncError, ValueError):
    kind = "path"

    @classmethod
    def missing_file(cls, path: object) -> PathError:
        """The file someone asked to archive is not there (any more)."""
        return cls(f"The file to archive, {path}, does not exist: it may have been removed.")


class DaemonError(SyncError):
    """The rclone daemon could not be started or stopped answering."""

    kind = "daemon"
    retryable = True


class RemoteNotConfigured(SyncError):
    kind = "remote_not_configured"
    remote_wide = True


class AuthError(SyncError):
    kind = "auth"
    remote_wide = True


class NotFoundError(SyncError):
    kind = "not_found"


class TemporaryError(SyncError):
    kind = "temporary"
    retryable = True


class OperationTimeout(SyncError):
    kind = "timeout"
    retryable = True


class QuotaError(SyncError):
    """The archive is full: a remote over its quota, or the disk under a local archive folder. Only
    freeing space fixes it, and it fails every waiting item alike."""

    kind = "quota"
    remote_wide = True


class UnsupportedError(SyncError):
    """The backend cannot do what was asked (a share link on WebDAV, say): nothing to retry."""

    kind = "unsupported"

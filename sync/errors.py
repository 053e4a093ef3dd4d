"""Typed errors that carry one sentence for people.

Every failure a user or operator can cause ends up as one of these. ``str(err)`` is the
sentence (problem + fix) and is safe to show in Discord or a terminal; ``detail`` holds the
raw rclone text for the logs. Neither ever contains a credential: rc error texts echo only
the operation's parameters, and Helix never puts secrets in those.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every archiving failure; ``retryable`` tells the outbox whether to try again."""

    retryable: bool = False
    kind: str = "error"

    def __init__(self, hint: str, *, detail: str | None = None) -> None:
        super().__init__(hint)
        self.hint = hint
        self.detail = detail


class ConfigError(SyncError):
    kind = "config"


class BinaryError(SyncError):
    kind = "binary"


class PathError(SyncError, ValueError):
    kind = "path"


class DaemonError(SyncError):
    """The rclone daemon could not be started or stopped answering."""

    kind = "daemon"
    retryable = True


class RemoteNotConfigured(SyncError):
    kind = "remote_not_configured"


class AuthError(SyncError):
    kind = "auth"


class NotFoundError(SyncError):
    kind = "not_found"


class TemporaryError(SyncError):
    kind = "temporary"
    retryable = True


class OperationTimeout(SyncError):
    kind = "timeout"
    retryable = True


class QuotaError(SyncError):
    kind = "quota"

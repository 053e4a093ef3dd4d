"""Helix's archiving layer: one supervised ``rclone rcd`` and the operations Helix needs.

This package never imports ``discord`` or ``bot``: it must be usable alone (``python -m sync``)
and testable without a Discord simulation.
"""

from sync._outbox.store import Outbox, OutboxCounts, OutboxError, OutboxItem
from sync._outbox.worker import OutboxWorker
from sync._probe import ProbeReport, ProbeStep
from sync._service import ArchiveResult, RemoteInfo, SyncService
from sync.errors import (
    AuthError,
    BinaryError,
    ConfigError,
    DaemonError,
    NotFoundError,
    OperationTimeout,
    PathError,
    QuotaError,
    RemoteNotConfigured,
    SyncError,
    TemporaryError,
)
from sync.settings import SyncSettings

__all__ = [
    "ArchiveResult",
    "AuthError",
    "BinaryError",
    "ConfigError",
    "DaemonError",
    "NotFoundError",
    "OperationTimeout",
    "Outbox",
    "OutboxCounts",
    "OutboxError",
    "OutboxItem",
    "OutboxWorker",
    "PathError",
    "ProbeReport",
    "ProbeStep",
    "QuotaError",
    "RemoteInfo",
    "RemoteNotConfigured",
    "SyncError",
    "SyncService",
    "SyncSettings",
    "TemporaryError",
]

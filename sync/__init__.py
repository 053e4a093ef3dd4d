"""Helix's archiving layer: one supervised ``rclone rcd`` and the operations Helix needs.

This is the package's public face: other packages import from ``sync`` and nothing deeper.
It never imports ``discord`` or ``bot``: it must be usable alone (``python -m sync``) and
testable without a Discord simulation.
"""

from sync._local import local_root_problem
from sync._outbox.reports import OutboxListener
from sync._outbox.store import OPEN_STATES, STATES, Outbox, OutboxCounts, OutboxError, OutboxItem
from sync._outbox.worker import OutboxWorker
from sync._paths import ArchiveRoot
from sync._probe import ProbeReport, ProbeStep
from sync._rclone.binary import check_version, find_rclone, rclone_version
from sync._rclone.client import Progress, ProgressCallback
from sync._remote import RemoteEntry
from sync._results import ArchiveResult, RemoteInfo
from sync._service import SyncService
from sync.archive import Archive
from sync.errors import (
    ArchiveUnreadable,
    AuthError,
    BinaryError,
    ConfigError,
    DaemonError,
    LocalDiskFull,
    NotFoundError,
    OperationTimeout,
    PathError,
    QuotaError,
    RemoteNotConfigured,
    SyncError,
    TemporaryError,
    UnsupportedError,
)
from sync.settings import SyncSettings

__all__ = [
    "OPEN_STATES",
    "STATES",
    "Archive",
    "ArchiveResult",
    "ArchiveRoot",
    "ArchiveUnreadable",
    "AuthError",
    "BinaryError",
    "ConfigError",
    "DaemonError",
    "LocalDiskFull",
    "NotFoundError",
    "OperationTimeout",
    "Outbox",
    "OutboxCounts",
    "OutboxError",
    "OutboxItem",
    "OutboxListener",
    "OutboxWorker",
    "PathError",
    "ProbeReport",
    "ProbeStep",
    "Progress",
    "ProgressCallback",
    "QuotaError",
    "RemoteEntry",
    "RemoteInfo",
    "RemoteNotConfigured",
    "SyncError",
    "SyncService",
    "SyncSettings",
    "TemporaryError",
    "UnsupportedError",
    "check_version",
    "find_rclone",
    "local_root_problem",
    "rclone_version",
]

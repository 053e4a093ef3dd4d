"""The catalogue: a local SQLite index of everything captured from Discord (messages, blobs, segments).

Its public face; other packages import from ``catalogue`` only. It knows neither Discord nor the
bot nor rclone, and everything in it can be rebuilt from the remote's segments.
"""

from catalogue._rebuild_rows import Prepared, prepare
from catalogue._schema import blob_path
from catalogue._search import (
    HIT_END,
    HIT_START,
    ArchivedFile,
    ArchivedMessage,
    ChannelSummary,
    SearchFilters,
    SearchHit,
    SearchPage,
)
from catalogue.models import (
    BackupRow,
    BlobRow,
    CatalogueStats,
    ChannelRow,
    Deletion,
    SegmentClaim,
    SegmentRow,
)
from catalogue.store import Catalogue, CatalogueError

__all__ = [
    "BackupRow",
    "BlobRow",
    "Catalogue",
    "CatalogueError",
    "CatalogueStats",
    "ChannelRow",
    "Deletion",
    "Prepared",
    "SegmentClaim",
    "SegmentRow",
    "blob_path",
    "prepare",
    "HIT_END", "HIT_START", "ArchivedFile", "ArchivedMessage", "ChannelSummary", "SearchFilters", "SearchHit",
    "SearchPage",
]

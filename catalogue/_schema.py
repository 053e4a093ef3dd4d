"""The catalogue's SQLite file: its schema, and opening it (WAL, checked, migrated).

Everything here blocks; it runs only in the catalogue's one database thread.

Tables, and why each exists:

- ``channels``: what Helix knows of a channel (name, topic, type, parent), its durable cursor
  (every message up to it is archived) and whether it is watched.
- ``messages``: the current state of every archived message, one row per id (the id is the key:
  archiving a message twice is impossible by construction). Its ``record`` is '' while the
  message is as first archived: the JSON is then its line in ``records`` (see ``RECORD``).
  ``content``, ``author_name`` and the attachments' file names are indexed in ``message_text``
  (FTS5, rowid = message id) for search.
- ``attachments``: every attachment of every message, with the blob that holds its bytes. It is
  also the blobs' reference table: a blob is deleted only when no ``saved`` attachment names it.
- ``blobs``: content-addressed files on the remote (``blobs/sha256/<2>/<64>``).
- ``records``: the lines of the segments, in the order they were archived (``seq``): a message,
  a revision or a tombstone each. ``segment_id`` is NULL until the line is claimed by a segment;
  a segment is built only from committed rows, so a crash can repeat an upload, never a line.
- ``segments``: immutable JSONL files on the remote (and their HTML transcripts).
- ``backups``: each ``!backup`` as work in flight, so a restart resumes it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from runtime.sqlite_file import connect_checked

SCHEMA_VERSION = 1

# A message's current record (``messages m``): its own column once an edit or a deletion changed
# it, else '' and the record is its line in ``records``, which is then stored once, not twice.
RECORD = ("coalesce(nullif(m.record, ''), (SELECT r.body FROM records r WHERE r.message_id = m.id "
          "AND r.kind = 'message' AND r.revision = 0))")

SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    topic TEXT,
    type TEXT NOT NULL DEFAULT 'text',
    parent_id INTEGER,
    cursor INTEGER NOT NULL DEFAULT 0,
    watched INTEGER NOT NULL DEFAULT 0,
    watched_by INTEGER,
    caught_up INTEGER NOT NULL DEFAULT 0,
    manifest_dirty INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    author_id INTEGER NOT NULL,
    author_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    edited_at TEXT,
    content TEXT NOT NULL DEFAULT '',
    reply_to INTEGER,
    revision INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT,
    record TEXT NOT NULL,
    archived_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_channel ON messages (channel_id, id);
CREATE INDEX IF NOT EXISTS messages_author ON messages (author_id, id);
CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT,
    sha256 TEXT,
    state TEXT NOT NULL CHECK (state IN ('saved', 'missing', 'too_big', 'removed'))
);
CREATE INDEX IF NOT EXISTS attachments_message ON attachments (message_id);
CREATE INDEX IF NOT EXISTS attachments_blob ON attachments (sha256) WHERE state = 'saved';
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    path TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'landed', 'doomed', 'deleted')),
    outbox_id INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    transcript TEXT NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    records INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('writing', 'queued', 'landed')),
    dirty INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    size INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_channel ON segments (channel_id, id);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('message', 'revision', 'tombstone')),
    revision INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    segment_id INTEGER,
    UNIQUE (message_id, kind, revision)
);
CREATE INDEX IF NOT EXISTS records_unclaimed ON records (channel_id, seq) WHERE segment_id IS NULL;
CREATE INDEX IF NOT EXISTS records_segment ON records (segment_id, seq);
CREATE TABLE IF NOT EXISTS backups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    threads INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'backup' CHECK (kind IN ('backup', 'catchup')),
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'cancelled', 'failed')),
    requested_by INTEGER,
    reply_channel_id INTEGER,
    reply_message_id INTEGER,
    scanned INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    too_big INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS backups_running ON backups (state, id);
CREATE VIRTUAL TABLE IF NOT EXISTS message_text USING fts5(
    content, author, files, tokenize = 'unicode61 remove_diacritics 2'
);
"""


def connect(db_path: Path) -> sqlite3.Connection:
    """Open, check and migrate the catalogue; raises Corrupt for a file to move aside."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect_checked(db_path, SCHEMA, SCHEMA_VERSION)
    conn.row_factory = sqlite3.Row
    return conn


def move_aside(db_path: Path) -> Path:
    """Rename an unreadable catalogue (and its WAL) out of the way; it can be rebuilt from the remote."""
    target = db_path.with_name(f"{db_path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{db_path}{suffix}")
        if src.exists():
            src.replace(Path(f"{target}{suffix}"))
    return target

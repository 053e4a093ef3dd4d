"""The catalogue's SQLite file: its schema, and opening it (WAL, checked, migrated).

Everything here blocks; it runs only in the catalogue's one database thread.

Tables, and why each exists:

- ``channels``: what Helix knows of a channel (name, topic, type, parent), its durable cursor
  (every message up to it is archived) and whether it is watched.
- ``messages``: the current state of every archived message, one row per id (the id is the key:
  archiving a message twice is impossible by construction). Its ``record`` is '' while the
  message is as first archived: the JSON is then its line, in ``records`` or in a ``packed``
  segment (``_packed.record_text``).
  ``content``, ``author_name`` and ``files`` (the attachments' file names) are indexed in
  ``message_text`` (FTS5, rowid = message id) for search. The index reads its text from this
  table (external content), so the text is stored once; triggers keep it in step with every
  change, and a rebuild into an empty catalogue drops them and indexes everything once at the end.
- ``attachments``: every attachment of every message, with the blob that holds its bytes. It is
  also the blobs' reference table: a blob is deleted only when no ``saved`` attachment names it.
- ``blobs``: content-addressed files on the remote (``blobs/sha256/<2>/<64>``).
- ``records``: the lines of the segments, in the order they were archived (``seq``): a message,
  a revision or a tombstone each. ``segment_id`` is NULL until the line is claimed by a segment;
  a segment is built only from committed rows, so a crash can repeat an upload, never a line.
- ``segments``: immutable JSONL files on the remote (and their HTML transcripts).
- ``packed``: a segment read back from the remote, whole (compressed) instead of a ``records``
  row per line (``_packed.py``); unpacked into ``records`` when a deletion has to rewrite it.
- ``backups``: each ``!backup`` as work in flight, so a restart resumes it.
- ``bulk_load``: a row while a rebuild fills an empty catalogue without its secondary indexes
  and triggers; whoever opens the file next with the row still there finishes that work.
- ``rebuild_due``: a row from the start of a rebuild until it has read every segment. A rebuild
  cut short (a deploy, a crash, the remote gone) leaves a catalogue that is no longer empty but
  not whole; the row is what has the next start run it again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from runtime.sqlite_file import connect_checked

SCHEMA_VERSION = 2

def record_json(obj: dict[str, Any]) -> str:
    """One canonical JSON text per record: the same lines always make the same segment bytes."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def blob_path(sha256: str) -> str:
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


def file_names(rec: dict[str, Any]) -> str:
    """A record's attachments' file names as ``messages.files`` holds them (and search finds them)."""
    return " ".join(str(a.get("filename") or "") for a in rec.get("attachments") or [])


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
    caught_up INTEGER NOT NULL DEFAULT 0,  -- unread: whether live messages may move the cursor is the engine's to know
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
    files TEXT NOT NULL DEFAULT '',
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
CREATE INDEX IF NOT EXISTS blobs_queued ON blobs (size) WHERE state = 'queued';
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
    dirty INTEGER NOT NULL DEFAULT 0,  -- changes to its lines that no write has shown yet (_segments.py)
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
CREATE TABLE IF NOT EXISTS packed (
    segment_id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    min_id INTEGER NOT NULL,
    max_id INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS packed_channel ON packed (channel_id, min_id);
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
CREATE TABLE IF NOT EXISTS bulk_load (started_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rebuild_due (started_at REAL NOT NULL);
-- Threads deleted on Discord: their archive is readable by nobody, like a deleted channel's (a thread
-- Discord no longer lists is otherwise taken for one archived for being quiet).
CREATE TABLE IF NOT EXISTS gone_threads (id INTEGER PRIMARY KEY, gone_at REAL NOT NULL);
-- Edits and deletions heard and not yet followed, written as they arrive: Discord sends them once, and
-- a catch-up after a restart or a crash finds new messages, not what happened to old ones.
CREATE TABLE IF NOT EXISTS heard (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS message_text USING fts5(
    content, author_name, files, content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
"""

# The words index follows ``messages``; FTS5 needs a row's old text to take it out.
_NEW = ("INSERT INTO message_text (rowid, content, author_name, files) "
        "VALUES (new.id, new.content, new.author_name, new.files)")
_OLD = ("INSERT INTO message_text (message_text, rowid, content, author_name, files) "
        "VALUES ('delete', old.id, old.content, old.author_name, old.files)")
TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS messages_text_ai AFTER INSERT ON messages BEGIN {_NEW}; END",
    f"CREATE TRIGGER IF NOT EXISTS messages_text_ad AFTER DELETE ON messages BEGIN {_OLD}; END",
    "CREATE TRIGGER IF NOT EXISTS messages_text_au AFTER UPDATE OF content, author_name, files ON messages "
    f"BEGIN {_OLD}; {_NEW}; END",
)
# What a bulk load goes without: each is rebuilt at its end, in one pass, faster than row by row.
BULK_DROPPED = ("messages_text_ai", "messages_text_ad", "messages_text_au")
BULK_INDEXES = ("messages_channel", "messages_author", "messages_author_name", "attachments_message",
                "attachments_blob", "records_unclaimed", "records_segment")
BULK_PAGE_SIZE = 16_384  # bytes; SQLite's default is 4,096
BULK_FTS_HASH = 16 << 20  # bytes of words FTS5 buffers while a load builds its index
FTS_HASH = 1 << 20  # FTS5's default
_SCHEMA_INDEXES = tuple(sql.strip() for sql in SCHEMA.split(";") if sql.strip().startswith("CREATE INDEX"))


def connect(db_path: Path) -> sqlite3.Connection:
    """Open, check and migrate the catalogue; raises Corrupt for a file to move aside."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect_checked(db_path, SCHEMA, SCHEMA_VERSION, after=finish_bulk_load)
    conn.row_factory = sqlite3.Row
    return conn


def start_bulk_load(conn: sqlite3.Connection) -> bool:
    """Into an empty catalogue: drop the triggers and secondary indexes; False (nothing done) if not empty.

    Until the load ends the file also leaves WAL for a rollback journal: the load writes pages
    that did not exist, which a rollback journal does not copy, where the WAL would hold each of
    them once more until a checkpoint wrote it again. Each commit still syncs. An empty file
    also takes bigger pages (``BULK_PAGE_SIZE``) first, which a table filled out of id order
    splits less often.
    """
    if conn.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is not None:
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO bulk_load (started_at) VALUES (?)", (time.time(),))
        for name in BULK_DROPPED:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        for name in BULK_INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if conn.execute("PRAGMA journal_mode = TRUNCATE").fetchone()[0].lower() == "truncate" and \
            conn.execute("PRAGMA page_size").fetchone()[0] < BULK_PAGE_SIZE:
        conn.execute(f"PRAGMA page_size = {int(BULK_PAGE_SIZE)}")
        conn.execute("VACUUM")  # what sets the new page size; the file holds next to nothing yet
    return True


def finish_bulk_load(conn: sqlite3.Connection) -> None:
    """Put back what ``start_bulk_load`` dropped and index every message's words in one pass; at
    every open too, so a load cut short by a crash is finished then."""
    loading = conn.execute("SELECT 1 FROM bulk_load LIMIT 1").fetchone() is not None
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql in TRIGGERS:
            conn.execute(sql)
        if loading:
            for sql in _SCHEMA_INDEXES:
                conn.execute(sql)
            # A bigger buffer of words before FTS5 writes them out: fewer pieces of index to merge.
            conn.execute("INSERT INTO message_text (message_text, rank) VALUES ('hashsize', ?)", (BULK_FTS_HASH,))
            conn.execute("INSERT INTO message_text (message_text) VALUES ('rebuild')")
            conn.execute("INSERT INTO message_text (message_text, rank) VALUES ('hashsize', ?)", (FTS_HASH,))
            conn.execute("DELETE FROM bulk_load")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal" and \
            conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
        raise sqlite3.OperationalError("WAL mode is not available on this filesystem")


def move_aside(db_path: Path) -> Path:
    """Rename an unreadable catalogue (and its WAL) out of the way; it can be rebuilt from the remote."""
    target = db_path.with_name(f"{db_path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{db_path}{suffix}")
        if src.exists():
            src.replace(Path(f"{target}{suffix}"))
    return target

"""Opening one of Helix's SQLite files (the outbox, the catalogue): checked, in WAL mode, migrated.

Both hold state that must survive a kill -9 and both must tell "this file is damaged, move it
aside" from "the disk or folder is the problem, moving would not help": the first is ``Corrupt``,
the second stays ``sqlite3.OperationalError``. Everything here blocks: call it from the owner's
database thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path


class Corrupt(Exception):
    """The file exists but SQLite cannot use it (garbage, truncated, a schema from another version)."""


def connect_checked(db_path: Path, schema: str, version: int,
                    after: Callable[[sqlite3.Connection], object] | None = None) -> sqlite3.Connection:
    """Open ``db_path``, check it, create ``schema`` in it (version ``version``), then run ``after``.

    Raises Corrupt for a file to move aside, and sqlite3.OperationalError for trouble that moving
    would not fix (a read-only folder, a full disk, a lock held by another process).
    """
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise sqlite3.OperationalError("WAL mode is not available on this filesystem")
        conn.execute("PRAGMA synchronous = FULL")  # in WAL mode NORMAL may lose the last commit on power loss
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise Corrupt(f"integrity check failed: {check[:200]}")
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found not in (0, version):
            raise Corrupt(f"schema version {found}, expected {version}")
        conn.executescript(schema)
        conn.execute(f"PRAGMA user_version = {int(version)}")
        if after is not None:
            after(conn)
    except sqlite3.OperationalError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
        conn.close()
        raise Corrupt(str(exc)) from None
    except BaseException:
        conn.close()
        raise
    return conn

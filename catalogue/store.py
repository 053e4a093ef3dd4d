"""The catalogue's async face: one SQLite file in WAL mode, driven from one dedicated thread.

Every call hops to that thread (as the outbox does), so the event loop never waits on the disk.
``await cat.call("add_messages", records)`` runs ``Tables.add_messages`` there; the methods are
listed in ``catalogue/_tables.py`` and ``catalogue/_backups.py``. A database SQLite cannot read
is moved aside and a fresh one started: the remote is the source of truth, and the catalogue
can be rebuilt from its segments.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

from catalogue._schema import connect, move_aside
from catalogue._tables import Tables
from runtime.sqlite_file import Corrupt

log = structlog.get_logger("helix.catalogue")


class CatalogueError(Exception):
    """The catalogue could not be read or written; ``str(err)`` is one sentence with the fix."""


class Catalogue:
    """``await open()`` (or ``async with``) before use, ``close()`` once."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.db_path = self.data_dir / "catalogue.sqlite3"
        self._executor: ThreadPoolExecutor | None = None
        self._tables: Tables | None = None
        self.moved_aside: Path | None = None

    async def open(self) -> Catalogue:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helix-catalogue-db")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        return self

    def _open_sync(self) -> None:
        try:
            try:
                conn = connect(self.db_path)
            except Corrupt as exc:
                self.moved_aside = move_aside(self.db_path)
                log.error("catalogue_corrupt_moved_aside", reason=str(exc), moved_to=str(self.moved_aside),
                          action="started a fresh catalogue; rebuild it from the remote")
                conn = connect(self.db_path)
        except (OSError, sqlite3.Error) as exc:
            raise self._unwritable(exc) from None
        self._tables = Tables(conn)
        self._tables.ensure_read_indexes()

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._tables is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(self._executor, self._tables.close)
            self._tables = None
        self._executor.shutdown(wait=False)
        self._executor = None

    async def __aenter__(self) -> Catalogue:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run one ``Tables`` operation in the database thread; trouble with the disk becomes one sentence."""
        if self._executor is None:
            raise CatalogueError("The catalogue is not open: Helix is starting or stopping; try again in a minute.")

        def run() -> Any:
            if self._tables is None:
                raise CatalogueError("The catalogue is closed: Helix is stopping; try again after the restart.")
            return getattr(self._tables, method)(*args, **kwargs)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except (OSError, sqlite3.OperationalError) as exc:
            raise self._unwritable(exc) from None

    def _unwritable(self, exc: BaseException) -> CatalogueError:
        reason = getattr(exc, "strerror", None) or str(exc)
        full = getattr(exc, "errno", None) == errno.ENOSPC or "full" in reason.lower()
        fix = "free some space there" if full else "make HELIX_DATA_DIR point to a writable folder"
        return CatalogueError(f"Helix cannot write its catalogue {self.db_path} ({reason}): {fix}.")

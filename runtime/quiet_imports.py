"""Importing a package without the warnings its import-time self-checks log about themselves.

SimCord, on import, checks that discord.py's internals are where it expects them by building a
throwaway ``discord.Client(intents=Intents.none())``; discord.py then logs "Guilds intent seems to be
disabled" about that client, which is not Helix's (Helix's own has the intent). Both the simulation
(``bot.sim``) and the preflight's import checks import SimCord on every start of the bot, and an
operator reading the log takes the line for a setting to fix. Standard library only: the preflight
imports this before it knows whether the third-party packages are installed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from types import ModuleType

# (logger, start of the message) of records that describe an import's own probe, never the application.
IMPORT_SELF_CHECKS = (("discord.state", "Guilds intent seems to be disabled"),)


class _DropSelfChecks(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


@contextlib.contextmanager
def self_checks_silenced() -> Iterator[None]:
    """Drop only the known self-check records, and only while the block runs."""
    installed = [(logging.getLogger(name), _DropSelfChecks(prefix)) for name, prefix in IMPORT_SELF_CHECKS]
    for logger, dropping in installed:
        logger.addFilter(dropping)
    try:
        yield
    finally:
        for logger, dropping in installed:
            logger.removeFilter(dropping)


def quiet_import(module: str) -> ModuleType:
    """``importlib.import_module`` without the self-check records above."""
    with self_checks_silenced():
        return importlib.import_module(module)

"""How much each section measures, in a full run and with ``--quick`` (a smoke run: smaller, fewer rounds)."""

from __future__ import annotations

FULL = {
    "render": {"rounds": 9},
    "commands": {"commands": 250, "rituals": 9},
    "startup": {"rounds": 7},
    "batch": {"files": 500, "size_kib": 64, "rounds": 7, "singles": 500},
    "archive_overhead": {"size_mib": 256, "rounds": 11},
    "backfill": {"messages": 20_000, "rounds": 3},
    "capture_files": {"files": 200, "total_mib": 1024, "big_mib": 1024, "rounds": 3},
    "capture_webdav": {"files": 200, "total_mib": 1024, "rounds": 2},
    "find": {"messages": 1_000_000, "rebuild_messages": 200_000, "rounds": 3},
}

QUICK = {
    "render": {"rounds": 3},
    "commands": {"commands": 40, "rituals": 3},
    "startup": {"rounds": 2},
    "batch": {"files": 100, "size_kib": 64, "rounds": 2, "singles": 100},
    "archive_overhead": {"size_mib": 16, "rounds": 3},
    "backfill": {"messages": 1_000, "rounds": 1},
    "capture_files": {"files": 20, "total_mib": 32, "big_mib": 64, "rounds": 1},
    "capture_webdav": {"files": 10, "total_mib": 16, "rounds": 1},
    "find": {"messages": 20_000, "rebuild_messages": 5_000, "rounds": 1},
}

"""The figures the benchmark reports, in the order the table shows them, with the goals set for them.

A goal is ``("<=", x)`` or ``(">=", x)``; figures without one are reported for context.
``rows()`` also says how each figure compares with its goal as one number, ``goal_ratio``:
1.0 is exactly on the goal, below 1.0 is better than the goal, above 1.0 misses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    goal: tuple[str, float] | None = None
    digits: int = 2


FIGURES = (
    Figure("archive_overhead_local", "archive ÷ rclone copyto, local folder", "×", ("<=", 1.03), 3),
    Figure("archive_overhead_webdav", "archive ÷ rclone copyto, loopback WebDAV", "×", ("<=", 1.03), 3),
    Figure("archive_vs_cp_local", "archive ÷ cp, local folder", "×", None, 2),
    Figure("batch_speedup", "batch: N archive() calls ÷ one archive_many", "×", (">=", 20.0), 1),
    Figure("loop_lag_max_ms", "loop lag during archive, max", "ms", ("<=", 20.0), 1),
    Figure("loop_lag_p99_ms", "loop lag during archive, p99", "ms", None, 1),
    Figure("loop_lag_blocking_max_ms", "loop lag, blocking subprocess.run (reference)", "ms", None, 0),
    Figure("heartbeat_rtt_p50_ms", "!heartbeat round trip, p50", "ms", None, 2),
    Figure("heartbeat_rtt_p99_ms", "!heartbeat round trip, p99", "ms", ("<=", 20.0), 2),
    Figure("status_rtt_p99_ms", "!status round trip, p99", "ms", None, 2),
    Figure("ritual_e2e_ms", "!ritual 108 to archived, end to end", "ms", None, 0),
    Figure("ritual_render_ms_108", "ritual render, 108 steps", "ms", ("<=", 100.0), 1),
    Figure("ritual_render_ms_1000", "ritual render, 1000 steps", "ms", None, 1),
    Figure("ritual_render_ms_10000", "ritual render, 10000 steps", "ms", None, 1),
    Figure("startup_s", "process start → ready", "s", ("<=", 2.0), 2),
    Figure("rss_idle_mb", "RSS idle (Python process)", "MB", ("<=", 100.0), 1),
    Figure("rss_peak_archive_mb", "RSS peak during archive (file)", "MB", None, 1),
    Figure("archive_vs_copyfile_local", "one-file archive ÷ the daemon's operations/copyfile, local", "×",
           ("<=", 1.05), 3),
    Figure("backfill_ratio", "backfill rate ÷ the rate limits' ceiling", "×", (">=", 0.9), 3),
    Figure("backfill_429s", "responses 429 during the backfill", "", ("<=", 0.0), 0),
    Figure("backfill_loop_lag_max_ms", "loop lag during a backfill, max", "ms", ("<=", 20.0), 1),
    Figure("backfill_heartbeats_late", "gateway heartbeats late during a backfill", "", ("<=", 0.0), 0),
    Figure("capture_files_ratio", "backup of 200 files ÷ (plain download + plain rclone copy)", "×",
           ("<=", 0.8), 3),
    Figure("capture_second_ratio", "unchanged second backup ÷ the first", "×", ("<=", 0.05), 3),
    Figure("capture_second_uploads", "files the unchanged second backup uploads", "", ("<=", 1.0), 0),
    Figure("capture_rss_by_size_mb", "RSS peak, 1 GiB attachment − small attachment", "MB", ("<=", 10.0), 1),
    Figure("capture_loop_lag_max_ms", "loop lag during a backup with files, max", "ms", ("<=", 20.0), 1),
    Figure("find_p99_ms", "!find query → rendered page, p99, 1M messages", "ms", ("<=", 50.0), 1),
    Figure("find_p99_tenth_ms", "!find p99, asker reads a tenth of the channels", "ms", ("<=", 50.0), 1),
    Figure("rebuild_ratio", "catalogue rebuild ÷ a plain json.loads loop", "×", (">=", 0.5), 3),
)

# Context the table shows under the figures: references measured in the same run.
CONTEXT = (
    Figure("archive_overhead_local_known_hash", "archive ÷ rclone copyto, local, hash known (the outbox's path)",
           "×", None, 3),
    Figure("rclone_vs_cp_local", "rclone copyto ÷ cp, local folder", "×", None, 2),
    Figure("loop_lag_rclone_max_ms", "loop lag awaiting a plain rclone process, max", "ms", None, 1),
    Figure("loop_lag_idle_max_ms", "loop lag, ticker alone (machine noise), max", "ms", None, 1),
    Figure("loop_lag_worst_ms", "loop lag during archive, worst run", "ms", None, 1),
    Figure("rss_peak_archive_quarter_mb", "RSS peak during archive (file ÷ 4)", "MB", None, 1),
    Figure("rss_growth_archive_mb", "RSS growth within one archive run (file)", "MB", None, 2),
    Figure("rss_growth_archive_quarter_mb", "RSS growth within one archive run (file ÷ 4)", "MB", None, 2),
    Figure("status_rtt_p50_ms", "!status round trip, p50", "ms", None, 2),
    Figure("batch_vs_rclone_copy", "archive_many ÷ plain rclone copy of the folder", "×", None, 2),
    Figure("single_archive_ms", "one small archive() call", "ms", None, 1),
    Figure("startup_python_floor_s", "bare interpreter start (floor)", "s", None, 3),
    Figure("rss_idle_rclone_mb", "RSS idle (rclone daemon)", "MB", None, 1),
    Figure("catalogue_mb_per_million", "catalogue size per million messages", "MB", None, 0),
    Figure("rebuild_floor_ratio", "SQLite alone (rows, FTS5, indexes; nothing read or parsed) ÷ json.loads loop",
           "×", None, 3),
    Figure("rebuild_copied_ratio", "catalogue rebuild with the segments copied first (any non-local remote) ÷ "
           "json.loads loop", "×", None, 3),
    Figure("archive_vs_copyfile_local_no_hash", "archive ÷ operations/copyfile, hash unknown", "×", None, 3),
    Figure("capture_webdav_ratio", "the backup with files to loopback WebDAV ÷ (curl + rclone copy to it)", "×",
           None, 2),
    Figure("capture_downloads_vs_curl", "Helix's downloads alone (hashed as written) ÷ curl's, same files", "×",
           None, 2),
)


def goal_ratio(fig: Figure, value: float) -> float | None:
    if fig.goal is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    op, target = fig.goal
    if op == "<=" and target == 0:
        return 0.0 if value <= 0 else math.inf  # a count that must be zero
    if op == "<=":
        return value / target
    return target / value if value else math.inf


def met(fig: Figure, value: float) -> bool | None:
    ratio = goal_ratio(fig, value)
    return None if ratio is None else ratio <= 1.0


def goal_text(fig: Figure) -> str:
    if fig.goal is None:
        return ""
    op, target = fig.goal
    return f"{'≤' if op == '<=' else '≥'} {target:g}"

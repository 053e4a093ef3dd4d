"""`python -m bench --quick` runs end to end and writes every figure with a goal, and the context ones asked for.

A smoke test: it proves the benchmark still runs against the current code (real rclone, the
bot under SimCord) and that results.json keeps its keys. It never asserts on timings: those
belong to bench/README.md, measured on purpose, not to a CI machine's mood.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ISSUE_KEYS = (
    "archive_overhead_local", "archive_overhead_webdav", "archive_vs_cp_local", "batch_speedup",
    "loop_lag_max_ms", "loop_lag_p99_ms", "loop_lag_blocking_max_ms",
    "heartbeat_rtt_p50_ms", "heartbeat_rtt_p99_ms", "status_rtt_p99_ms", "ritual_e2e_ms",
    "ritual_render_ms_108", "ritual_render_ms_1000", "ritual_render_ms_10000",
    "startup_s", "rss_idle_mb", "rss_peak_archive_mb",
    "archive_vs_copyfile_local", "backfill_ratio", "backfill_429s", "backfill_loop_lag_max_ms",
    "backfill_heartbeats_late", "capture_files_ratio", "capture_second_ratio", "capture_second_uploads",
    "capture_rss_by_size_mb", "capture_loop_lag_max_ms", "find_p99_ms", "find_p99_tenth_ms", "rebuild_ratio",
    "catalogue_mb_per_million",
    "cpu_count", "python", "rclone",
)


@pytest.mark.slow
def test_quick_benchmark_writes_every_figure_and_a_chart(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    results = json.loads((tmp_path / "results.json").read_text())
    missing = [k for k in ISSUE_KEYS if results.get(k) is None]
    assert not missing, f"results.json lacks {missing}"
    assert results["run"]["mode"] == "quick"
    assert results["cpu_count"] == os.cpu_count()
    assert results["rclone"].startswith("1.")
    assert results["rss_peak_archive_quarter_mb"] is not None, "the peak must be shown for a 4x smaller file too"

    # The table on stdout has a row for every figure, each with its value.
    for key in ISSUE_KEYS[:-3]:
        assert key in done.stdout, f"{key} missing from the printed table"

    chart = tmp_path / "chart.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(chart) as img:
        assert img.width >= 1000 and img.height >= 400

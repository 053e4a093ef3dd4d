"""``python -m bot demo`` when the archive is wrong: a list of what failed and exit 1, never a
traceback; and the next run starts clean rather than reporting the last run's failures as its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.bot.test_demo import REPO, newcomer_env


def demo(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "demo"], cwd=REPO, env={**newcomer_env(data_dir), **env},
                          capture_output=True, text=True, timeout=180)


def test_an_undefined_remote_fails_the_demo_with_a_list_and_the_next_run_starts_clean(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    failed = demo(data_dir, HELIX_ARCHIVE="nosuch:x")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr, failed.stderr
    assert "\ndemo FAILED:\n" in failed.stdout and "  - " in failed.stdout.split("demo FAILED:")[1], failed.stdout

    ok = demo(data_dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Outbox: 0 pending, 0 failed" in ok.stdout, "the demo carried the last run's failures over"


def test_a_local_archive_that_cannot_be_created_fails_the_demo_with_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "f.txt"
    blocker.write_text("a file")
    failed = demo(tmp_path / "data", HELIX_ARCHIVE=str(blocker / "sub"))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr, failed.stderr
    reasons = failed.stdout.split("demo FAILED:")[1]
    assert "HELIX_ARCHIVE" in reasons and str(blocker) in reasons, failed.stdout

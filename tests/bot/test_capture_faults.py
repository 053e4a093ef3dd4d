"""kill -9 during a backup, again and again: after the restarts, every message is archived exactly once.

The real bot in a child process (tests/support/fault_bot.py) backs up a channel of 10,000
messages, the same ids on every start; it is killed at random points, restarted, and resumes
from the cursor in its catalogue. The test then reads every segment on the remote.
"""

from __future__ import annotations

import collections
import json
import random
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests.bot.test_faults import bot_env, bots, short_tmp  # noqa: F401
from tests.support.fault_bot import FaultBot

pytestmark = pytest.mark.slow

MESSAGES = 10_000
KILLS = 10


def backup_rows(data_dir: Path) -> list[tuple[str, int]]:
    """(state, messages scanned so far) of each backup, oldest first, read beside the running bot."""
    path = data_dir / "catalogue.sqlite3"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute("SELECT state, scanned FROM backups ORDER BY id"))
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def backup_states(data_dir: Path) -> list[str]:
    return [state for state, _ in backup_rows(data_dir)]


def scanned_after(data_dir: Path, start: int, more: int, within_s: float = 10.0) -> None:
    """Wait until the backup has scanned ``more`` messages past ``start``, or stopped running."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        rows = backup_rows(data_dir)
        if rows and (rows[-1][0] != "running" or rows[-1][1] >= start + more):
            return
        time.sleep(0.005)


def test_kill_nine_mid_backup_then_every_message_exactly_once(bots, tmp_path):  # noqa: F811
    data_dir = tmp_path / "data"
    env = bot_env(data_dir, FAULT_SEED_MESSAGES=str(MESSAGES))
    rng = random.Random(12)
    channel = None
    kills_mid_backup = 0
    for run in range(KILLS):
        bot = bots(env)
        ready = bot.ready()
        assert channel in (None, ready["seeded_channel"]), "the restarted world must show the same channel"
        channel = ready["seeded_channel"]
        if run == 0:
            lines = bot.say("owner", f"!backup <#{channel}>")
            assert any("Backing up" in line for line in lines), lines
        # The kill point: a random number of messages further on, so it falls inside the backup
        # however fast this machine is (a point in time would fall after its end on a fast one).
        scanned_after(data_dir, (backup_rows(data_dir) or [("", 0)])[-1][1], rng.randint(50, 900))
        time.sleep(rng.uniform(0, 0.15))  # and anywhere in the work on a page, not just after its commit
        running = backup_states(data_dir)[-1:] == ["running"]
        bot.kill()
        kills_mid_backup += running
    bot = bots(env)
    bot.ready()
    deadline = time.monotonic() + 180
    while backup_states(data_dir)[-1:] != ["done"]:
        assert time.monotonic() < deadline, f"the backup did not finish: {backup_states(data_dir)}"
        time.sleep(0.2)
    assert bot.drain()["ok"]
    assert bot.quit() == 0

    root = data_dir / "archive"
    seen: collections.Counter[str] = collections.Counter()
    guild_dirs = list((root / "discord").glob(f"*/{channel}/messages"))
    assert guild_dirs, "no segments on the remote"
    for segment in guild_dirs[0].glob("*.jsonl"):
        seen.update(json.loads(line)["id"] for line in segment.read_text().splitlines())
    duplicated = [mid for mid, n in seen.items() if n > 1]
    assert not duplicated, f"archived twice: {duplicated[:10]}"
    assert len(seen) == MESSAGES, f"{MESSAGES - len(seen)} messages missing"
    assert kills_mid_backup >= KILLS // 2, f"only {kills_mid_backup} kills fell inside the backup"


def finished_and_stopped(bot: FaultBot, data_dir: Path, within_s: float = 120) -> None:
    """Wait for the latest backup to finish and its files to land, then stop the bot gracefully."""
    deadline = time.monotonic() + within_s
    while backup_states(data_dir)[-1:] != ["done"]:
        assert time.monotonic() < deadline, f"the backup did not finish: {backup_states(data_dir)}"
        time.sleep(0.2)
    assert bot.drain()["ok"]
    assert bot.quit() == 0


def archived_ids(root: Path, channel: int) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()
    for segment in root.glob(f"discord/*/{channel}/messages/*.jsonl"):
        seen.update(json.loads(line)["id"] for line in segment.read_text().splitlines())
    return seen


def test_a_watched_channel_catches_up_on_what_it_missed_while_down(bots, tmp_path):  # noqa: F811
    data_dir = tmp_path / "data"
    bot = bots(bot_env(data_dir, FAULT_SEED_MESSAGES="300", HELIX_WATCH_FLUSH_S="0.5"))
    channel = bot.ready()["seeded_channel"]
    lines = bot.say("owner", f"!watch <#{channel}>")
    assert any("Watching" in line for line in lines), lines
    deadline = time.monotonic() + 60
    while backup_states(data_dir) != ["done"]:
        assert time.monotonic() < deadline, backup_states(data_dir)
        time.sleep(0.1)
    assert bot.quit() == 0  # the graceful stop flushes what the watch holds

    # While Helix was down, 200 more messages were posted: the next start catches up from the cursor.
    bot = bots(bot_env(data_dir, FAULT_SEED_MESSAGES="500", HELIX_WATCH_FLUSH_S="0.5"))
    assert bot.ready()["seeded_channel"] == channel
    deadline = time.monotonic() + 60
    while backup_states(data_dir) != ["done", "done"]:
        assert time.monotonic() < deadline, backup_states(data_dir)
        time.sleep(0.1)
    assert bot.drain()["ok"]
    assert bot.quit() == 0
    seen = archived_ids(data_dir / "archive", channel)
    assert len(seen) == 500 and set(seen.values()) == {1}, (len(seen), max(seen.values()))


def test_a_volume_lost_mid_backup_loses_no_message_once_the_catalogue_is_rebuilt(bots, tmp_path):  # noqa: F811
    """The remote's channel.json never claims more than its segments hold: a backup killed between
    segments, on a volume lost with it (a deploy without one, a new host), is rebuilt from the
    remote and the next backup fetches again what only the lost catalogue held."""
    data_dir = tmp_path / "data"
    env = bot_env(data_dir, FAULT_SEED_MESSAGES="3000")
    bot = bots(env)
    channel = bot.ready()["seeded_channel"]
    bot.say("owner", f"!backup <#{channel}>")
    scanned_after(data_dir, 0, 1300)  # past the first segment of 1,000: the rest only in the catalogue
    bot.kill()
    root = data_dir / "archive"
    [manifest] = root.glob(f"discord/*/{channel}/channel.json")
    held = archived_ids(root, channel)
    assert int(json.loads(manifest.read_text())["cursor"]) <= max(map(int, held)), "the manifest claims more"

    for path in data_dir.iterdir():  # the volume is lost: only the archive remote is left
        if path != root:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    bot = bots(env)
    assert bot.ready()["seeded_channel"] == channel
    deadline = time.monotonic() + 60
    while not any("rebuilt from the archive remote" in line for line in bot.say("owner", "!status")):
        assert time.monotonic() < deadline, "the catalogue was not rebuilt"
        time.sleep(0.2)
    bot.say("owner", f"!backup <#{channel}>")
    finished_and_stopped(bot, data_dir)
    seen = archived_ids(root, channel)
    assert len(seen) == 3000 and set(seen.values()) == {1}, (len(seen), max(seen.values()))


def test_a_backup_stopped_by_a_deploy_says_it_is_paused_and_goes_on_after_the_restart(bots, tmp_path):  # noqa: F811
    data_dir = tmp_path / "data"
    env = bot_env(data_dir, FAULT_SEED_MESSAGES="3000")
    bot = bots(env)
    channel = bot.ready()["seeded_channel"]
    bot.say("owner", f"!backup <#{channel}>")
    scanned_after(data_dir, 0, 300)
    since = bot.mark()
    bot.terminate()  # SIGTERM, as Railway sends it at a redeploy
    bot.wait_for("stopped", since=since, within_s=30)
    edits = [line for e in bot.events[since:] if e.get("event") == "discord" for line in e["lines"]]
    assert any("paused by a restart at" in line and "carries on from there" in line for line in edits), edits

    bot = bots(env)
    bot.ready()
    finished_and_stopped(bot, data_dir)
    assert len(archived_ids(data_dir / "archive", channel)) == 3000

"""Nothing lost, proven by breaking things on purpose: the real bot in a child process.

Each test runs ``tests/support/fault_bot.py`` (the real HelixBot under SimCord, with the SIGTERM handlers of
``python -m bot run``) against real rclone and a real ``rclone serve webdav`` on 127.0.0.1, then
kills it, stops it, stops its server, gives it the wrong password or a broken data directory, and
checks what users were told, what the outbox holds (its SQLite file, read directly) and what is on
the server's disk. Tests wait for events with deadlines; the only sleeps are the kill loop's random
kill points.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault_bot import REPO, FaultBot, one_sentence
from tests.support.remotes import LoopbackRemote

pytestmark = pytest.mark.slow

KILL_POINTS = 24
GRACE_S = 3
# HELIX_STOP_GRACE_S is the whole stop (the bot keeps 2.5 s of it back for rclone); the margin is
# for this shared machine's noise only. railway.toml's drainingSeconds = 30 covers the default 20.
STOP_MARGIN_S = 3


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a container's PID 1 to reap it is not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outbox_rows(data_dir: Path) -> list[dict]:
    """The outbox's items as SQLite has them on disk (read-only, with the bot stopped or running)."""
    conn = sqlite3.connect(f"file:{data_dir / 'outbox.sqlite3'}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM items ORDER BY id")]
    finally:
        conn.close()


def remote_files(remote: LoopbackRemote) -> dict[str, Path]:
    return {p.relative_to(remote.storage).as_posix(): p for p in remote.files()}


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short TMPDIR for the bots: rclone's Unix socket path must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="hx-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bots(tmp_path: Path, short_tmp: Path) -> Iterator:
    """Start harness runs; every one still alive at the end is killed."""
    started: list[FaultBot] = []

    def start(env: dict[str, str]) -> FaultBot:
        bot = FaultBot({**env, "TMPDIR": str(short_tmp)}, tmp_path / f"bot-{len(started)}.log")
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.close()


def bot_env(data_dir: Path, remote: LoopbackRemote | None = None, *, password: str | None = None,
            **extra: str) -> dict[str, str]:
    """The environment an operator would set, with quick retries so a test does not wait on backoff."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELIX_", "RCLONE_CONFIG_", "DISCORD_"))}
    env.update(HELIX_DATA_DIR=str(data_dir), HELIX_RITUAL_COOLDOWN_S="0", HELIX_STOP_GRACE_S=str(GRACE_S),
               HELIX_RETRIES="0", HELIX_LOW_LEVEL_RETRIES="1", HELIX_CONNECT_TIMEOUT_S="2",
               HELIX_IO_TIMEOUT_S="20", HELIX_OUTBOX_RETRY_BASE_S="0.2", HELIX_OUTBOX_RETRY_CAP_S="1",
               LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    if remote is not None:
        env.update(remote.env(password=password), HELIX_ARCHIVE=remote.archive)
    env.update(extra)
    return env


def assert_landed_once(remote: LoopbackRemote, data_dir: Path) -> tuple[int, int]:
    """Every outbox item is done and on the remote exactly once, whole; return (lost, duplicated)."""
    rows = outbox_rows(data_dir)
    files = remote_files(remote)
    partials = sorted(rel for rel in files if ".helix-partial-" in rel)
    lost = [r["id"] for r in rows if r["state"] != "done" or r["rel_path"] not in files]
    damaged = [r["id"] for r in rows if r["rel_path"] in files and sha256(files[r["rel_path"]]) != r["sha256"]]
    expected = {r["rel_path"] for r in rows}
    extra = sorted(rel for rel in files if rel not in expected)
    assert not lost, f"items not on the remote: {[r for r in rows if r['id'] in lost]}"
    assert not damaged, f"items whose remote copy differs from what was queued: {damaged}"
    assert not partials, f"partial uploads left on the remote: {partials}"
    assert not extra, f"files on the remote that no item explains (duplicates?): {extra}"
    return len(lost), len(files) - len(expected)


# -- kill -9 ------------------------------------------------------------------------------------------


def test_kill_nine_mid_upload_then_restart_lands_every_item_exactly_once(tmp_path: Path, bots) -> None:
    """kill -9 at random points while uploads run; after each restart the queue carries on."""
    seed = int(os.environ.get("HELIX_FAULT_SEED") or secrets.randbits(32))
    print(f"kill loop: seed {seed} (HELIX_FAULT_SEED={seed} to replay)")
    rng = random.Random(seed)
    # Helix sends at 1 MiB/s (HELIX_BWLIMIT) to a server that reads at 1 MiB/s: a 1 MiB file takes about a
    # second to land, so a random point in that second is a kill in the middle of a transfer.
    remote = LoopbackRemote(kind="webdav", root=tmp_path / "served", bwlimit="1M").start()
    try:
        data_dir = tmp_path / "data"
        env = bot_env(data_dir, remote, HELIX_BWLIMIT="1M")
        size, upload_s = 1 << 20, 1.0
        mid_upload = 0  # kills that hit an upload in flight (claimed, not landed)
        told: dict[int, str] = {}  # item id -> archive path, as the harness or the bot confirmed them
        rituals = 0
        for n in range(KILL_POINTS):
            bot = bots(env)
            ready = bot.ready()
            since = bot.mark()
            if n % 4 == 0:  # every fourth run through !ritual, as a user asks for one
                rituals += 1
                bot.send("say", text=f"!ritual {rng.randint(3, 40)}", **{"as": "alice"})
                event = bot.wait_for(lambda e: e.get("event") == "claimed" and e["rel"].startswith("rituals/"),
                                     since=since)
            else:
                queued = bot.enqueue(size, f"faults/{n:02d}-{secrets.token_hex(3)}.bin")
                assert queued["event"] == "enqueued", queued
                told[queued["ids"][0]] = queued["rel"]
                # Most kills hit the new item's first attempt; some hit whatever is uploading first,
                # which after a kill is an item on its second or later attempt.
                new_id = queued["ids"][0]
                first = rng.random() < 0.3
                event = bot.wait_for(lambda e, i=new_id, f=first: e.get("event") == "claimed" and
                                     (f or e["id"] == i), since=since)
            told.setdefault(event["id"], event["rel"])
            # The random kill point: mostly mid-transfer, sometimes while the copy is checked, moved into
            # place and recorded, sometimes just after. (A ritual's image is a quarter of the size.)
            time.sleep(rng.uniform(0, (0.4 if event["rel"].startswith("rituals/") else 1.2) * upload_s))
            bot.kill()
            landed = {e["id"] for e in bot.all("landed")}
            mid_upload += any(e["id"] not in landed for e in bot.all("claimed"))
            # rclone dies with the bot (PDEATHSIG): no orphan keeps uploading behind the new process.
            deadline = time.monotonic() + 10
            while alive(ready["rclone_pid"]) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not alive(ready["rclone_pid"]), "rclone outlived the killed bot"

        bot = bots(env)
        bot.ready()
        drained = bot.drain(within_s=120)
        assert drained["ok"] and drained["failed"] == 0, drained
        assert bot.quit() == 0
        lost, duplicated = assert_landed_once(remote, data_dir)
        rows = outbox_rows(data_dir)
        assert set(told) <= {r["id"] for r in rows}, "an item the user was told about is not in the outbox"
        assert sum(r["rel_path"].endswith(".png") for r in rows) == rituals
        retried = sum(r["attempts"] > 1 for r in rows)
        print(f"kill loop: {KILL_POINTS} kill -9s (seed {seed}), {mid_upload} of them mid-upload; {len(rows)} "
              f"items ({rituals} rituals), {retried} needed more than one attempt; lost {lost}, "
              f"duplicated {duplicated}")
        assert mid_upload >= KILL_POINTS // 4, "too few kills hit an upload in flight for this to prove much"
    finally:
        remote.stop()


# -- the remote goes down and comes back ---------------------------------------------------------------


def test_remote_down_rituals_are_queued_and_land_in_order_when_it_returns(tmp_path: Path, bots) -> None:
    remote = LoopbackRemote(kind="webdav", root=tmp_path / "served").start()
    try:
        data_dir = tmp_path / "data"
        bot = bots(bot_env(data_dir, remote))
        bot.ready()
        remote.stop()
        answers = [bot.say(who, f"!ritual {steps}") for who, steps in (("alice", 7), ("bob", 12), ("alice", 30))]
        queued: list[int] = []
        for lines in answers:
            text = "\n".join(lines)
            found = re.search(r"saved locally, queued as #(\d+)", text)
            assert found and "will retry" in text, text
            queued.append(int(found.group(1)))
        assert queued == sorted(queued) and len(set(queued)) == 3, queued
        status = "\n".join(bot.say("alice", "!status"))
        assert "6 pending" in status, status

        since = bot.mark()
        remote.start()  # no user action from here on
        for item_id in range(1, 7):
            bot.wait_for(lambda e, i=item_id: e.get("event") == "landed" and e["id"] == i, since=since)
        landed = [e["id"] for e in bot.events[since:] if e.get("event") == "landed"]
        assert landed == sorted(landed) == list(range(1, 7)), f"landed out of order: {landed}"
        # Each ritual's message is edited to say where it went, with the bot still up.
        bot.wait_for(lambda e: e.get("event") == "discord" and sum(
            "✅ archived" in line for ev in bot.all("discord") for line in ev["lines"]) >= 3, since=since)
        assert bot.quit() == 0
    finally:
        remote.stop()
    assert_landed_once(remote, data_dir)
    rows = outbox_rows(data_dir)
    assert [r["id"] for r in sorted(rows, key=lambda r: r["updated_at"])] == [r["id"] for r in rows]
    pngs = [remote.storage / r["rel_path"] for r in rows if r["rel_path"].endswith(".png")]
    assert [p.stat().st_mtime for p in pngs] == sorted(p.stat().st_mtime for p in pngs)


# -- wrong credentials ----------------------------------------------------------------------------------


def test_wrong_password_fails_for_good_then_retry_all_lands_after_the_fix(tmp_path: Path, bots) -> None:
    remote = LoopbackRemote(kind="webdav", root=tmp_path / "served").start()
    try:
        data_dir = tmp_path / "data"
        bot = bots(bot_env(data_dir, remote, password="not-the-password"))
        bot.ready()
        text = "\n".join(bot.say("alice", "!ritual 9"))
        # The ritual's message is public: a plain state; the fix is in !outbox (the owner's) and the log.
        assert "could not archive #1" in text and "is not working" in text, text
        assert "rejected the login" not in text, text
        failed = {e["id"]: e for e in bot.all("failed")}
        assert set(failed) == {1, 2} and {e["kind"] for e in failed.values()} == {"auth"}, failed
        reason = failed[1]["error"]
        listing = "\n".join(bot.say("owner", "!outbox"))
        assert "0 pending" in listing and "2 failed" in listing, listing
        for item_id in (1, 2):
            assert re.search(rf"`#{item_id}` failed .*rejected the login", listing), listing
        # Failed for good: no retry behind the user's back, however long the bot stays up.
        assert not bot.all("retry") and not bot.all("landed")
        assert bot.quit() == 0
        assert [r["state"] for r in outbox_rows(data_dir)] == ["failed", "failed"]
        assert not remote.has("rituals/**/*")

        bot = bots(bot_env(data_dir, remote))  # the operator fixed RCLONE_CONFIG_LOOP_PASS and redeployed
        bot.ready()
        assert "2 failed" in "\n".join(bot.say("owner", "!outbox")), "the failed items did not survive the restart"
        since = bot.mark()
        assert "Retrying #1, #2 now." in "\n".join(bot.say("owner", "!outbox retry all"))
        for item_id in (1, 2):
            bot.wait_for(lambda e, i=item_id: e.get("event") == "landed" and e["id"] == i, since=since)
        assert "Nothing waiting" in "\n".join(bot.say("owner", "!outbox"))
        assert bot.quit() == 0
    finally:
        remote.stop()
    assert_landed_once(remote, data_dir)
    assert reason.startswith("The archive remote 'loop:' rejected the login"), reason


# -- SIGTERM mid-upload ---------------------------------------------------------------------------------


def test_sigterm_mid_upload_exits_within_the_grace_and_the_item_lands_after_restart(tmp_path: Path, bots) -> None:
    # 2 MiB through a server reading 256 KiB/s: about 8 s, far longer than the 3 s grace.
    remote = LoopbackRemote(kind="webdav", root=tmp_path / "served", bwlimit="256K").start()
    try:
        data_dir = tmp_path / "data"
        env = bot_env(data_dir, remote)
        bot = bots(env)
        bot.ready()
        queued = bot.enqueue(2 << 20, "big/upload.bin")
        item_id = queued["ids"][0]
        bot.wait_for(lambda e: e.get("event") == "claimed" and e["id"] == item_id)
        since = bot.mark()
        bot.terminate()
        stopped_at = time.monotonic()
        with contextlib.suppress(BrokenPipeError):  # typed just after Railway sent SIGTERM
            bot.send("say", text="!heartbeat", **{"as": "alice"})
        code = bot.wait_exit(GRACE_S + STOP_MARGIN_S)
        took = time.monotonic() - stopped_at
        assert code == 0, bot.log_tail()
        events = [e["event"] for e in bot.events[since:]]
        assert "stopping" in events and events[-1] == "stopped", events
        assert "landed" not in events, "the upload was meant to be cut short by the grace"
        answers = [e for e in bot.events[since:] if e.get("event") == "answer"]
        if answers:  # answered before the gateway closed (the usual case): the user is told to come back
            assert any("restarting" in line and "try again in a minute" in line for line in answers[0]["lines"]), \
                answers
        print(f"SIGTERM: exit 0 after {took:.1f} s with HELIX_STOP_GRACE_S={GRACE_S}; "
              f"command during the stop answered: {bool(answers)}")
        [row] = outbox_rows(data_dir)
        assert row["state"] == "pending" and row["id"] == item_id, row
        assert not remote.has("big/upload.bin")

        bot = bots(env)
        assert bot.ready()["recovered"] == 0, "a graceful stop must leave nothing 'uploading'"
        bot.wait_for(lambda e: e.get("event") == "landed" and e["id"] == item_id, within_s=90)
        assert bot.quit() == 0
    finally:
        remote.stop()
    assert_landed_once(remote, data_dir)
    assert sha256(remote.storage / "big/upload.bin") == queued["sha256"]


# -- the data directory breaks ----------------------------------------------------------------------------


def test_data_dir_unwritable_at_start_ends_the_start_with_one_sentence(tmp_path: Path, bots) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data directory should be")
    env = bot_env(blocker / "data")

    bot = bots(env)
    fatal = bot.wait_for(lambda e: e.get("event") in ("ready", "fatal"))
    assert fatal["event"] == "fatal" and bot.wait_exit(30) == 2
    assert one_sentence(fatal["error"]) and "HELIX_DATA_DIR" in fatal["error"], fatal

    run = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env={**env, "DISCORD_TOKEN": "never.used.because-the-start-stops-first",
                                          "HELIX_NO_HEALTH": "1"})
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), run.stderr
    assert one_sentence(errors[0][len("error: "):]) and "Not a directory" in errors[0], errors
    assert "Traceback" not in run.stdout + run.stderr


def test_data_dir_broken_while_running_answers_one_sentence_and_the_bot_lives_on(tmp_path: Path, bots) -> None:
    data_dir = tmp_path / "data"
    bot = bots(bot_env(data_dir))  # the embedded archive: a folder under the data dir
    bot.ready()
    assert "archived to" in "\n".join(bot.say("alice", "!ritual 5"))

    # Where the ritual is written first becomes a file (a full or remounted disk looks the same to Helix).
    shutil.rmtree(data_dir / "tmp")
    (data_dir / "tmp").write_text("not a folder")
    [answer] = bot.say("alice", "!ritual 6")
    # A member is told the operator must fix the data folder; the variable is for the log.
    assert one_sentence(answer) and "data folder" in answer and "HELIX_" not in answer, answer
    assert "alive" in "\n".join(bot.say("alice", "!heartbeat"))
    (data_dir / "tmp").unlink()

    # Then the outbox's own folder: the request cannot be made durable, so it is refused, not accepted.
    shutil.rmtree(data_dir / "outbox")
    (data_dir / "outbox").write_text("not a folder")
    [answer] = bot.say("bob", "!ritual 7")
    assert one_sentence(answer) and "data folder" in answer and "HELIX_" not in answer, answer
    assert "alive" in "\n".join(bot.say("bob", "!heartbeat"))
    assert "pending" in "\n".join(bot.say("bob", "!status"))
    (data_dir / "outbox").unlink()
    (data_dir / "outbox").mkdir()

    assert "archived to" in "\n".join(bot.say("alice", "!ritual 8")), "the bot did not recover"
    assert not any("went wrong" in line for e in bot.all("answer") for line in e["lines"])
    assert all(e["type"] in ("UserFacingError", "HybridCommandError", "CommandInvokeError")
               for e in bot.all("bot_error")), bot.all("bot_error")
    assert bot.quit() == 0
    assert [r["state"] for r in outbox_rows(data_dir)] == ["done"] * 4

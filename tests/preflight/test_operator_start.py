"""An operator starting Helix on a new service: ``python -m bot check`` and ``python -m bot run`` (with and
without ``--preflight``) as real processes, with the mistakes a first deploy makes: a crypt over a
remote that was never defined, a wrong crypt password, a variable's name mistyped, a remote that
does not exist, a Discord setting the check must refuse as the bot does, an inline connection string
holding a password. Each is named at start; nothing is logged that is not the operator's to fix; a
Ctrl-C during the live probe is one line and exit code 130.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import Settings
from sync import ConfigError
from tests.bot.test_startup import BotProcess
from tests.deploy import test_preflight as healthy
from tests.support.remotes import LoopbackRemote, free_port, obscure

ROOT = Path(__file__).resolve().parents[2]


def check(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # cwd is a temporary folder: no developer's .env can fill in what the test left unset.
    return subprocess.run([sys.executable, "-m", "bot", "check", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_preflight_names_the_remote_a_crypt_wraps_when_it_is_not_defined(tmp_path: Path) -> None:
    env = {**healthy.env.__wrapped__(tmp_path), "HELIX_ARCHIVE": "secret:helix", "RCLONE_CONFIG_SECRET_TYPE": "crypt",
           "RCLONE_CONFIG_SECRET_REMOTE": "nodav:x", "RCLONE_CONFIG_SECRET_PASSWORD": obscure("pw")}
    done = check(tmp_path, env)
    assert done.returncode == 1
    [said] = [line for line in done.stderr.splitlines() if "nodav" in line]
    assert "RCLONE_CONFIG_NODAV_TYPE" in said and "RCLONE_CONFIG_SECRET_REMOTE" in said, said


def test_the_probe_refuses_a_wrong_crypt_password(tmp_path: Path, webdav: LoopbackRemote) -> None:
    dav = LoopbackRemote(kind="webdav", root=webdav.root, name="dav", user=webdav.user, password=webdav.password,
                         port=webdav.port)
    base = {**healthy.env.__wrapped__(tmp_path), **dav.env(), "HELIX_ARCHIVE": "secret:helix",
            "RCLONE_CONFIG_SECRET_TYPE": "crypt", "RCLONE_CONFIG_SECRET_REMOTE": "dav:x"}
    written = subprocess.run([sys.executable, "-m", "sync", "upload", str(ROOT / "README.md")], cwd=tmp_path,
                             env={**base, "RCLONE_CONFIG_SECRET_PASSWORD": obscure("right")},
                             capture_output=True, text=True, timeout=120)
    assert written.returncode == 0, written.stderr
    wrong = obscure("wrong")
    done = check(tmp_path, {**base, "RCLONE_CONFIG_SECRET_PASSWORD": wrong}, "--probe")
    assert done.returncode == 1, done.stdout
    [said] = [line for line in done.stderr.splitlines() if "decrypt" in line]
    assert "RCLONE_CONFIG_SECRET_PASSWORD" in said and "'dav:x'" in said, said
    assert wrong not in done.stdout + done.stderr


def test_a_mistyped_variable_is_a_warning_of_the_preflight(tmp_path: Path) -> None:
    env = {**healthy.env.__wrapped__(tmp_path), "HELIX_ARCHIVE_REMOTE": "mega:helix"}
    done = check(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert ("warning: HELIX_ARCHIVE_REMOTE is set but Helix reads no such variable, so it is ignored: did you mean "
            "HELIX_ARCHIVE?") in done.stdout, done.stdout


def test_bot_check_refuses_the_discord_settings_that_would_stop_bot_run(tmp_path: Path) -> None:
    """README: `python -m bot check` is "everything the start script checks", so a value the bot refuses
    at its start must be a problem of the check, not an "all checks passed" before a deploy that exits 2."""
    bad = {"HELIX_DISCORD_RETRY_CAP_S": "2m", "HELIX_DISCORD_GATEWAY": "https://gateway.example/ws"}
    env = {**healthy.env.__wrapped__(tmp_path), **bad}
    done = check(tmp_path, env)
    assert done.returncode == 1, done.stdout
    problems = [line for line in done.stderr.splitlines() if line.startswith("problem: ")]
    for name in bad:
        assert sum(name in line for line in problems) == 1, problems
    started = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env={**env, "HELIX_NO_HEALTH": "1"},
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 2, started.stderr
    assert sorted(started.stderr.splitlines()) == sorted(f"error: {p.removeprefix('problem: ')}" for p in problems)
    # what `bot run` goes on with, read where the check reads it
    read = Settings.from_env({"HELIX_DISCORD_RETRY_CAP_S": "5", "HELIX_DISCORD_GATEWAY": "ws://127.0.0.1:9/ws"},
                             dotenv=None)
    assert (read.discord_retry_cap_s, read.discord_gateway, read.discord_api_base) == (5.0, "ws://127.0.0.1:9/ws", None)
    with pytest.raises(ConfigError, match="HELIX_DISCORD_API_BASE must be a URL"):
        Settings.from_env({"HELIX_DISCORD_API_BASE": "127.0.0.1:9/api"}, dotenv=None)


def test_bot_check_does_not_repeat_the_password_of_a_connection_string_missing_its_path(tmp_path: Path) -> None:
    password = obscure("hunter2-the-real-one")
    archive = f":webdav,url='https://alice:Sup3rS3cret@dav.example.com/dav',pass={password}"
    done = check(tmp_path, {**healthy.env.__wrapped__(tmp_path), "HELIX_ARCHIVE": archive})
    assert done.returncode == 1, done.stdout
    [said] = [line for line in done.stderr.splitlines() if "HELIX_ARCHIVE" in line]
    assert "':webdav,…'" in said and ":path is missing" in said, said
    assert "Sup3rS3cret" not in done.stdout + done.stderr and password not in done.stdout + done.stderr


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A server that accepts connections and never answers: a remote that hangs."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.settimeout(30)
    try:
        yield srv
    finally:
        srv.close()


def test_ctrl_c_during_the_live_probe_says_interrupted_and_exits_130(tmp_path: Path,
                                                                    silent_server: socket.socket) -> None:
    """`python -m bot check --probe` against a slow remote is a long wait an operator interrupts: one line,
    exit code 130, as `python -m sync probe` does; not a traceback through aiohttp."""
    port = silent_server.getsockname()[1]
    env = {**healthy.env.__wrapped__(tmp_path), "HELIX_ARCHIVE": "dav:helix", "RCLONE_CONFIG_DAV_TYPE": "webdav",
           "RCLONE_CONFIG_DAV_URL": f"http://127.0.0.1:{port}/", "HELIX_RETRIES": "0", "HELIX_LOW_LEVEL_RETRIES": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "check", "--probe"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        conn, _ = silent_server.accept()  # the probe's rclone is waiting on the remote: the long part
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends to the foreground process
        time.sleep(0.2)
        # The server goes away, so the clean-up of the interrupted upload fails at once instead of
        # waiting out its 10 s bound (that wait is by design, and not what this test is about).
        conn.close()
        silent_server.close()
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, err[-800:])
    assert err == ("interrupted: the preflight was stopped before it finished; run `python -m bot check --probe` "
                   "again for its report.\n"), err[-800:]


def bot_without_discord(env: dict[str, str], *args: str) -> BotProcess:
    """``python -m bot run`` against a Discord that refuses connections: it starts, then retries the login."""
    dead = free_port()
    env = {**env, "HELIX_NO_HEALTH": "1", "LOG_FORMAT": "json",
           "HELIX_DISCORD_API_BASE": f"http://127.0.0.1:{dead}/api/v10",
           "HELIX_DISCORD_GATEWAY": f"ws://127.0.0.1:{dead}/ws"}
    return BotProcess(env, [sys.executable, "-m", "bot", "run", *args])


async def test_a_start_without_the_preflight_warns_of_an_undefined_remote(tmp_path: Path) -> None:
    env = {**healthy.env.__wrapped__(tmp_path), "HELIX_ARCHIVE": "nosuch:helix", "HELIX_ARCHVE": "x"}
    bot = bot_without_discord(env)
    try:
        warned = await bot.wait_event("archive_remote_problem", 120)
        await bot.wait_event("discord_retry", 120)
    finally:
        await bot.stop(60)
    assert warned["level"] in ("warn", "warning"), warned
    assert "'nosuch:helix' is not defined" in warned["problem"] and "RCLONE_CONFIG_NOSUCH_TYPE" in warned["problem"]
    typos = bot.events("unknown_setting")
    assert len(typos) == 1 and "did you mean HELIX_ARCHIVE?" in typos[0]["problem"], typos


async def test_a_start_with_the_preflight_logs_nothing_about_intents(tmp_path: Path) -> None:
    """SimCord, imported by the preflight's import check, builds a client without intents of its own."""
    bot = bot_without_discord(healthy.env.__wrapped__(tmp_path), "--preflight")
    try:
        await bot.wait_event("discord_retry", 120)
    finally:
        await bot.stop(60)
    said = bot.output
    assert "preflight (runtime): all checks passed." in said, said
    assert "Guilds intent" not in said, said

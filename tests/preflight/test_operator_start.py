"""An operator starting Helix on a new service: ``python -m bot check`` and ``python -m bot run`` (with and
without ``--preflight``) as real processes, with the mistakes a first deploy makes: a crypt over a
remote that was never defined, a wrong crypt password, a variable's name mistyped, a remote that
does not exist. Each is named at start; nothing is logged that is not the operator's to fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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

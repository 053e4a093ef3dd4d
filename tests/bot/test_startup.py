"""An operator deploys while Discord is slow or down: `python -m bot run` as a real process.

The bot is pointed at a loopback Discord (``HELIX_DISCORD_API_BASE`` / ``HELIX_DISCORD_GATEWAY``)
on a port where, depending on the test, nothing listens yet, something accepts and never answers,
or the fake Discord runs. Each test reads what an operator reads: ``/health``, ``/ready``, the log
lines, the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import discord
import pytest

from bot.startup import transient_cause
from runtime.exit_codes import ExitCode
from sync import Outbox
from tests.support.loopback import LoopbackDiscord
from tests.support.remotes import LoopbackRemote, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 4
# A margin for this shared machine only: the stop itself is bounded by HELIX_STOP_GRACE_S.
STOP_MARGIN_S = 3
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123"  # token-shaped, not a real one


class BotProcess:
    """`python -m bot run` (or the deploy script) with its log lines collected as they come."""

    def __init__(self, env: dict[str, str], argv: list[str] | None = None) -> None:
        self.proc = subprocess.Popen(argv or [sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def events(self, name: str) -> list[dict]:
        found = []
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and name in (record.get("event"), record.get("message")):
                    found.append(record)
        return found

    async def wait_event(self, name: str, within: float = 30.0) -> dict:
        await wait_until(lambda: self.events(name), within, lambda: f"log event {name!r}; output:\n{self.output}")
        return self.events(name)[-1]

    async def stop(self, within: float) -> int:
        """SIGTERM, as Railway and `docker stop` send it; the exit code once the process is gone."""
        self.proc.send_signal(signal.SIGTERM)
        await wait_until(lambda: self.proc.poll() is not None, within,
                         lambda: f"exit within {within} s of SIGTERM; output:\n{self.output}")
        self._reader.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_bot(tmp_path: Path) -> Iterator:
    started: list[BotProcess] = []

    def start(discord_port: int, gateway_port: int | None = None, argv: list[str] | None = None,
              **extra: str) -> BotProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HELIX_", "DISCORD_", "RCLONE_CONFIG_"))}
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        # The deploy script runs `python`: this interpreter's, as in the image.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(DISCORD_TOKEN=TOKEN, HELIX_DATA_DIR=str(data), PORT="0",
                   HELIX_STOP_GRACE_S=str(GRACE_S), HELIX_DISCORD_RETRY_CAP_S="1",
                   HELIX_DISCORD_API_BASE=f"http://127.0.0.1:{discord_port}/api/v10",
                   HELIX_DISCORD_GATEWAY=f"ws://127.0.0.1:{gateway_port or discord_port}/ws",
                   HELIX_RITUAL_COOLDOWN_S="0", HELIX_HEARTBEAT_MINUTES="0", LOG_FORMAT="json", LOG_LEVEL="INFO",
                   HELIX_OUTBOX_RETRY_BASE_S="0.2", HELIX_OUTBOX_RETRY_CAP_S="1", PYTHONUNBUFFERED="1")
        env.update(extra)
        bot = BotProcess(env, argv)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.kill()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP port that accepts and never answers: a login or gateway connect that hangs."""
    accepted: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(len(accepted) + 1)
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def get(port: int, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.json()


async def health_port(bot: BotProcess) -> int:
    return (await bot.wait_event("health_server_started"))["port"]


def outbox_states(data_dir: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{data_dir / 'outbox.sqlite3'}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT state FROM items ORDER BY id")]
    finally:
        conn.close()


def assert_clean_stop(bot: BotProcess, code: int) -> None:
    assert code == ExitCode.OK, bot.output
    assert "Traceback" not in bot.output, bot.output


# -- Discord down at start: /health answers, queued items land, the bot connects once Discord is back --


async def test_discord_down_at_start_health_answers_outbox_drains_then_the_bot_connects(start_bot, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    queued = tmp_path / "queued.bin"
    queued.write_bytes(os.urandom(4096))
    async with Outbox(data) as box:  # what a previous run left behind
        await box.enqueue(queued, "before-restart/queued.bin", kind="file")
    port = free_port()
    bot = start_bot(port)

    health = await health_port(bot)
    assert (await get(health, "/health"))[0] == 200
    retry = await bot.wait_event("discord_retry")
    assert "Discord could not be reached" in retry["cause"] and retry["retry_in_s"] >= 0
    status, body = await get(health, "/ready")
    assert status == 503 and body["phase"] in ("retrying", "connecting"), body
    await wait_until(lambda: outbox_states(data) == ["done"], 30, "the queued item landed while Discord is down")
    assert (data / "archive" / "before-restart" / "queued.bin").read_bytes() == queued.read_bytes()
    status, body = await get(health, "/ready")
    assert body["phase"] == "retrying" and "Discord could not be reached" in body["last_error"], body

    async with LoopbackDiscord(port=port) as fake:
        await fake.wait_until(lambda: fake.identifies, within=30)
        reply = await fake.ask("!heartbeat", within=20)
        assert reply["content"].startswith("💓 alive"), reply

        async def ready_phase() -> bool:
            return (await get(health, "/ready"))[1].get("phase") == "ready"

        await wait_until(ready_phase, 10, "/ready's phase turning to ready")
        assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))
    assert len(bot.events("discord_retry")) >= 1
    assert all("Traceback" not in line for line in bot.lines)


async def test_a_hanging_login_does_not_keep_health_down(start_bot):
    async with silent_server() as (port, accepted):
        bot = start_bot(port)
        health = await health_port(bot)
        await wait_until(lambda: accepted, 30, "the login's connection")
        assert (await get(health, "/health"))[0] == 200
        status, body = await get(health, "/ready")
        assert status == 503 and body["phase"] == "connecting", body
        assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))


# -- SIGTERM in every phase: exit 0 within HELIX_STOP_GRACE_S, no traceback ----------------------------


async def test_sigterm_during_the_preflight(start_bot):
    bot = start_bot(free_port(), argv=["bash", str(ROOT / "deploy_v15.3.sh")])
    health = await health_port(bot)

    async def phase() -> str | None:
        with contextlib.suppress(aiohttp.ClientError):
            return (await get(health, "/ready"))[1].get("phase")
        return None

    assert await phase() == "preflight", "the preflight was over before the test could stop it"
    assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))
    assert not bot.events("rclone_started"), "the archive started although the stop came during the preflight"


async def test_the_deploy_script_runs_the_preflight_with_health_up_then_the_bot(start_bot):
    async with LoopbackDiscord() as fake:
        bot = start_bot(fake.port, argv=["bash", str(ROOT / "deploy_v15.3.sh")])
        await bot.wait_event("discord_ready")
        assert "preflight (runtime): all checks passed." in bot.output
        assert bot.output.index("health_server_started") < bot.output.index("preflight (runtime)")
        assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))


def test_the_deploy_script_with_problems_names_them_all_and_does_not_start(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELIX_", "DISCORD_"))}
    env.update(HELIX_DATA_DIR=str(tmp_path), HELIX_RITUAL_MAX_STEPS="lots",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    out = subprocess.run(["bash", str(ROOT / "deploy_v15.3.sh")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0
    assert "DISCORD_TOKEN is not set" in out.stderr and "HELIX_RITUAL_MAX_STEPS" in out.stderr, out.stderr
    assert "Traceback" not in out.stdout + out.stderr


async def test_sigterm_during_a_hanging_login(start_bot):
    async with silent_server() as (port, accepted):
        bot = start_bot(port)
        await wait_until(lambda: accepted, 30, "the login's connection")
        assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))


async def test_sigterm_during_the_backoff_between_attempts(start_bot):
    bot = start_bot(free_port(), HELIX_DISCORD_RETRY_CAP_S="600")
    await bot.wait_event("discord_retry")
    assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))


async def test_sigterm_during_the_gateway_connect(start_bot):
    async with LoopbackDiscord() as fake, silent_server() as (gateway, accepted):
        bot = start_bot(fake.port, gateway_port=gateway)
        await wait_until(lambda: accepted, 30, "the gateway connection after a good login")
        assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))


async def test_a_gateway_that_refuses_after_a_good_login_is_retried_in_one_line_each(start_bot):
    async with LoopbackDiscord() as fake:
        bot = start_bot(fake.port, gateway_port=free_port())  # REST answers, nothing listens for the gateway
        line = await bot.wait_event("discord_reconnect")
        # Refused at once, or (on a loaded machine) not answered in time: either way one sentence.
        assert line["cause"].startswith(("Discord could not be reached", "Discord did not answer in time")), line
        # discord.py draws its first wait at random between 0 and 1 s: one rounded to 0.0 is a retry too.
        assert line["retry_in_s"] is not None and line["retry_in_s"] >= 0 and "Traceback" not in bot.output, line
        assert line["level"] in ("warn", "warning")
        # discord.py's own retry then fails on the socket it never had: Helix retries, it does not crash
        retry = await bot.wait_event("discord_retry")
        assert retry["cause"] == "Discord's gateway could not be reached" and "Traceback" not in bot.output, retry
        assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))


async def test_sigterm_when_ready(start_bot):
    async with LoopbackDiscord() as fake:
        bot = start_bot(fake.port)
        await bot.wait_event("discord_ready")
        assert (await fake.ask("!heartbeat", within=20))["content"].startswith("💓")
        assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))


async def test_sigterm_mid_upload_keeps_the_item_for_the_next_start(start_bot, tmp_path: Path,
                                                                    webdav: LoopbackRemote):
    # A real upload (into a local archive folder the outbox's copy is renamed, in no time at all).
    async with LoopbackDiscord() as fake:
        bot = start_bot(fake.port, HELIX_BWLIMIT="4K",  # a ritual's PNG then takes well over the grace
                        HELIX_ARCHIVE=webdav.archive, **webdav.env())
        await bot.wait_event("discord_ready")
        await fake.dispatch_message("!ritual 400")
        await fake.wait_for_message(lambda m: "uploading" in (m["content"] or ""), within=30)
        assert_clean_stop(bot, await bot.stop(GRACE_S + STOP_MARGIN_S))
    states = outbox_states(tmp_path / "data")
    assert states and "pending" in states, states  # cut short, parked, not lost


# -- what counts as worth retrying --------------------------------------------------------------------


class _Response:
    def __init__(self, status: int) -> None:
        self.status, self.reason = status, "x"


@pytest.mark.parametrize(("exc", "retried"), [
    (aiohttp.ServerDisconnectedError(), True),
    (TimeoutError(), True),
    (ConnectionResetError(), True),
    (discord.HTTPException(_Response(502), "bad gateway"), True),
    (discord.HTTPException(_Response(429), "slow down"), True),
    (discord.GatewayNotFound(), True),
    (discord.HTTPException(_Response(403), "forbidden"), False),
    (discord.LoginFailure("bad token"), False),
    (discord.PrivilegedIntentsRequired(None), False),
    (ValueError("a bug"), False),
])
def test_which_failures_are_retried(exc: BaseException, retried: bool):
    cause = transient_cause(exc)
    assert (cause is not None) is retried
    if cause:
        assert "\n" not in cause

"""Secrets never leave: with a Discord token and rclone passwords in the environment, drive commands
that log and fail; no log line and no Discord message contains any of them."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from discord.ext import commands

from bot.settings import Settings
from bot.sim.world import simulated_guild
from runtime import logs
from sync.errors import SyncError
from tests.support.remotes import LoopbackRemote, obscure

TOKEN = "MTA4NjQ5NzM1NjI3Nzk0NjQ0Mg.GhT7xQ.dQw4w9WgXcQ-not-a-real-token-but-shaped-like-one"


@pytest.fixture
def captured_logs():
    stream = io.StringIO()
    yield stream
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "helix":
            root.removeHandler(handler)


async def test_token_and_passwords_never_reach_logs_or_discord(webdav: LoopbackRemote, data_dir: Path,
                                                               monkeypatch, captured_logs: io.StringIO):
    wrong_password = "hunter2-wrong-password"
    wrong_obscured = obscure(wrong_password)
    env = {**webdav.env(password=wrong_password), "DISCORD_TOKEN": TOKEN}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    logs.configure(level="DEBUG", fmt="json", stream=captured_logs)
    secrets = {TOKEN, wrong_password, wrong_obscured, webdav.password, webdav.env()["RCLONE_CONFIG_LOOP_PASS"]}

    sync = replace(webdav.settings(data_dir, password=wrong_password), retries=0,
                   outbox_retry_base_s=0.05, outbox_retry_cap_s=0.2)
    settings = Settings(discord_token=TOKEN, health=False, heartbeat_minutes=0, ritual_cooldown_s=0, sync=sync)
    assert TOKEN not in repr(settings)

    async with simulated_guild(settings) as world:
        alice = world.member("alice")
        transcript = []
        for who, text in ((world.owner, "!sync"), (alice, "!status"), (world.owner, "!testmega"),
                          (alice, "!ritual 5"), (world.owner, "!outbox"), (alice, "!heartbeat"),
                          (alice, f"!ritual {TOKEN}")):
            transcript += await world.say(who, text)
        await world.archive.worker.drain(20)
        unexpected = [e for e in world.env.errors if not isinstance(e, (commands.UserInputError, SyncError))]
        assert not unexpected
        discord_side = json.dumps([r.json for r in world.env.http_requests], default=str)
        history = "\n".join(m.content for m in world.channel.history())

    log_text = captured_logs.getvalue()
    assert "rejected the login" in "\n".join(transcript)  # the failure really happened and was explained
    assert "auth" in log_text
    for secret in secrets:
        assert secret not in log_text
        assert secret not in discord_side.replace(f"!ritual {TOKEN}", "")  # only the user's own message holds it
        assert secret not in "\n".join(transcript)
    assert TOKEN not in history.replace(f"!ritual {TOKEN}", "")

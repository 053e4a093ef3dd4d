"""No secret reaches a log line: structlog, the standard library (discord.py) and tracebacks alike.

The environment holds a Discord token and an rclone password, as on Railway; the code logs them in
every way a bug could (in the message, in a field, nested, as a %-argument, inside an exception's
traceback, through a repr) and not one captured line may contain either. Lines are also checked to
be what Railway's structured logs read (one JSON object, with ``message`` and ``level``) and to
carry the command context bound with contextvars.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from runtime import logs

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GaBcDe.helix-test-token-not-real-0123456789"
# An obscured rclone password; the quote and backslash exercise the JSON-escaped form of a secret.
PASSWORD = 'kH5v"Q\\mU7-obscured_pw'
ENV = {"DISCORD_TOKEN": TOKEN, "RCLONE_CONFIG_MEGA_PASS": PASSWORD, "RCLONE_CONFIG_MEGA_USER": "me@example.com"}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logs.refresh_secrets()


def capture(fmt: str) -> io.StringIO:
    stream = io.StringIO()
    logs.configure(fmt=fmt, level="DEBUG", stream=stream, env=ENV)
    return stream


class Leaky:
    def __repr__(self) -> str:
        return f"Leaky(token={TOKEN})"


def log_everything_badly() -> None:
    """Every way a careless line could carry a secret, through both logging front ends."""
    slog = structlog.get_logger("helix.sync")
    slog.info(f"logging in with {TOKEN}")
    slog.warning("remote_config", password=PASSWORD, nested={"list": [PASSWORD, {"deep": TOKEN}]})
    slog.info("object_field", obj=Leaky())
    logging.getLogger("discord.client").warning("token is %s and pass is %s", TOKEN, PASSWORD)
    logging.getLogger("discord.http").debug("headers: {'Authorization': 'Bot %s'}", TOKEN)
    try:
        raise RuntimeError(f"mega login failed for pass={PASSWORD} token={TOKEN}")
    except RuntimeError:
        slog.exception("archive_failed")
        logging.getLogger("discord.ext.commands").exception("command raised")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_no_line_contains_the_token_or_the_password(fmt: str) -> None:
    stream = capture(fmt)
    log_everything_badly()
    text = stream.getvalue()
    assert text.count(logs.REDACTED) >= 10, text
    for secret in (TOKEN, PASSWORD, json.dumps(PASSWORD)[1:-1], "helix-test-token-not-real"):
        assert secret not in text, f"{secret!r} leaked into the {fmt} log:\n{text}"


def test_json_lines_are_what_railway_reads_and_carry_the_command_context() -> None:
    stream = capture("json")
    structlog.contextvars.bind_contextvars(guild=123, channel=456, user_id=789, command="ritual", request_id="r1")
    structlog.get_logger("helix.bot").info("command_started")
    logging.getLogger("discord.gateway").warning("Shard ID %s heartbeat blocked", None)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["command_started", "Shard ID None heartbeat blocked"]
    assert [line["level"] for line in lines] == ["info", "warn"]
    for line in lines:
        assert {k: line[k] for k in ("guild", "channel", "user_id", "command", "request_id")} == {
            "guild": 123, "channel": 456, "user_id": 789, "command": "ritual", "request_id": "r1"}


def test_a_traceback_is_one_json_line() -> None:
    stream = capture("json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("discord").exception("failed")
    (line,) = stream.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_a_discord_token_shaped_string_is_redacted_even_when_not_in_the_environment() -> None:
    stranger = "OTg3NjU0MzIxMDk4NzY1NDMy.Gx1y2z.another-tokens-hmac-part-abcdefgh"
    logs.refresh_secrets({})
    assert logs.redact(f"leaked {stranger}!") == f"leaked {logs.REDACTED}!"
    assert logs.redact("a.b.c and version 1.2.3 stay") == "a.b.c and version 1.2.3 stay"


def test_secret_variables_are_recognised_by_name_and_short_values_left_alone() -> None:
    env = {"RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": "AKIA-secret-key-value", "GITHUB_TOKEN": "ghp_abcdef123456",
           "RCLONE_CONFIG_PASS": "config-key-123", "SMTP_PASSWORD": "p4ssw0rd!", "SOME_FLAG_KEY": "1",
           "HELIX_ARCHIVE": "mega:helix-archive"}
    logs.refresh_secrets(env)
    text = " ".join(env.values())
    redacted = logs.redact(text)
    for name in ("RCLONE_CONFIG_S3_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "RCLONE_CONFIG_PASS", "SMTP_PASSWORD"):
        assert env[name] not in redacted
    assert "mega:helix-archive" in redacted and " 1 " in f" {redacted} "


def test_refresh_secrets_picks_up_a_secret_set_after_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream, env={})
    monkeypatch.setenv("RCLONE_CONFIG_LATER_PASS", "set-after-configure-42")
    logs.refresh_secrets()
    structlog.get_logger("helix").info("value is set-after-configure-42")
    assert "set-after-configure-42" not in stream.getvalue()


def test_bad_log_settings_fall_back_and_say_so() -> None:
    stream = io.StringIO()
    logs.configure(stream=stream, env={"LOG_LEVEL": "loud", "LOG_FORMAT": "xml"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {line["message"] for line in lines} == {"log_settings_ignored"}
    problems = " ".join(line["problem"] for line in lines)
    assert "LOG_LEVEL" in problems and "LOG_FORMAT" in problems
    assert logging.getLogger().level == logging.INFO

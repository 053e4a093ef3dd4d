"""The bot's one settings object: read once from the environment (and ``.env``), validated at start-up.

A bad value stops the bot with one sentence naming the variable, before it logs in, instead of
failing later in a command nobody can connect to the configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from capture.settings import CaptureSettings
from runtime.env import (
    DEFAULT_DOTENV,
    BadSetting,
    EnvProblems,
    env_bool,
    env_float,
    env_ids,
    env_int,
    env_one_id,
    env_url,
    environment,
)
from sync import ConfigError, SyncSettings


@dataclass(frozen=True)
class Settings:
    """Everything configurable about Helix; see the README's table."""

    discord_token: str | None = field(default=None, repr=False)
    prefix: str = "!"
    guild_id: int | None = None
    owner_ids: frozenset[int] = frozenset()
    admin_user_ids: frozenset[int] = frozenset()
    admin_role_ids: frozenset[int] = frozenset()
    ritual_max_steps: int = 10_000
    ritual_cooldown_s: int = 30
    heartbeat_minutes: int = 30
    heartbeat_channel_id: int | None = None
    port: int = 8080
    health: bool = True
    stop_grace_s: int = 20
    get_upload_mb: int = 0  # !get posts files up to this size; 0: the server's own upload limit
    discord_retry_cap_s: float = 120.0  # longest wait between two login attempts while Discord is unreachable
    discord_api_base: str | None = None  # another Discord's REST base (the tests' loopback one)
    discord_gateway: str | None = None  # and its gateway
    sync: SyncSettings = field(default_factory=SyncSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 dotenv: str | os.PathLike[str] | None = DEFAULT_DOTENV) -> Settings:
        """Read the environment (or ``env``); a ``.env`` file fills only what it leaves unset."""
        try:
            merged = environment(env, dotenv)
        except BadSetting as exc:  # a .env that cannot be read
            raise ConfigError(str(exc)) from None
        p = EnvProblems()
        prefix = merged.get("HELIX_PREFIX", "!").strip() or "!"
        # Discord takes a leading "/" for its own slash commands, a backtick ends the code spans
        # every hint is written in, and a backslash escapes what follows it.
        if len(prefix) > 5 or any(c.isspace() for c in prefix) or "`" in prefix or prefix[0] in "/\\":
            p.sentences.append(f"HELIX_PREFIX must be 1 to 5 characters with no space or backtick, not starting with "
                               f"/ or \\ (Discord reads those itself), not {prefix!r}: for example ! or ?.")
            prefix = "!"
        token = merged.get("DISCORD_TOKEN", "").strip() or None
        settings = cls(
            discord_token=token,
            prefix=prefix,
            guild_id=p.read(env_one_id, merged, "HELIX_GUILD_ID", None),
            owner_ids=p.read(env_ids, merged, "HELIX_OWNER_IDS", frozenset()),
            admin_user_ids=p.read(env_ids, merged, "HELIX_ADMIN_USER_IDS", frozenset()),
            admin_role_ids=p.read(env_ids, merged, "HELIX_ADMIN_ROLE_IDS", frozenset()),
            ritual_max_steps=p.read(env_int, merged, "HELIX_RITUAL_MAX_STEPS", 10_000, 1, 1_000_000),
            ritual_cooldown_s=p.read(env_int, merged, "HELIX_RITUAL_COOLDOWN_S", 30, 0, 86_400),
            heartbeat_minutes=p.read(env_int, merged, "HELIX_HEARTBEAT_MINUTES", 30, 0, 10_080),
            heartbeat_channel_id=p.read(env_one_id, merged, "HELIX_HEARTBEAT_CHANNEL_ID", None),
            port=p.read(env_int, merged, "PORT", 8080, 0, 65_535),
            health=not p.read(env_bool, merged, "HELIX_NO_HEALTH", False),
            stop_grace_s=p.read(env_int, merged, "HELIX_STOP_GRACE_S", 20, 0, 3_600),
            get_upload_mb=p.read(env_int, merged, "HELIX_GET_UPLOAD_MB", 0, 0, 10_000),
            discord_retry_cap_s=p.read(env_float, merged, "HELIX_DISCORD_RETRY_CAP_S", 120.0, 0.1, 3600.0),
            discord_api_base=p.read(env_url, merged, "HELIX_DISCORD_API_BASE", None, ("http", "https"),
                                    "http://127.0.0.1:8000/api/v10"),
            discord_gateway=p.read(env_url, merged, "HELIX_DISCORD_GATEWAY", None, ("ws", "wss"),
                                   "ws://127.0.0.1:8000/ws"),
            sync=SyncSettings.from_env(merged, p),
            capture=CaptureSettings.from_env(merged, p),
        )
        p.raise_all(ConfigError)
        return settings

"""``python -m bot [run|demo|play|check]``.

``run`` (the default) connects to Discord. Configuration problems end it with one sentence and
the configuration exit code, before any login. SIGTERM (Railway's stop) and SIGINT start the
graceful stop: new commands are refused, running uploads get HELIX_STOP_GRACE_S, rclone stops,
the gateway closes, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from runtime.exit_codes import ExitCode

# Only the standard library (and runtime's stdlib-only modules) up here: `python -m bot check` must
# be able to say "package X is missing" in one line, not die on importing it.


async def _run(settings) -> int:
    import discord
    import structlog

    from bot.helix import HelixBot
    from bot.signals import install_stop_handlers
    from sync import Archive

    log = structlog.get_logger("helix.bot")
    # The archive (outbox, rclone) opens before the login and closes after the bot: a data directory
    # that cannot be written or a missing rclone ends the start with one sentence, before a login.
    async with Archive(settings.sync, stop_grace_s=settings.stop_grace_s) as archive, \
            HelixBot(settings, archive) as bot:
        install_stop_handlers(bot)
        try:
            await bot.start(settings.discord_token)
        except discord.LoginFailure:
            print("error: Discord rejected DISCORD_TOKEN: copy the bot token again from the developer "
                  "portal (Bot → Reset Token) and set it.", file=sys.stderr)
            return ExitCode.CONFIG
        except discord.PrivilegedIntentsRequired:
            print("error: the Message Content intent is not enabled: turn it on in the developer portal "
                  "(Bot → Privileged Gateway Intents).", file=sys.stderr)
            return ExitCode.CONFIG
    log.info("stopped")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Helix, the archiving Discord bot.")
    sub = parser.add_subparsers(dest="mode")
    sub.add_parser("run", help="connect to Discord with DISCORD_TOKEN (the default)")
    sub.add_parser("demo", help="run every command in a simulated guild and print the transcript")
    sub.add_parser("play", help="type commands into a simulated guild")
    check = sub.add_parser("check", help="preflight: report every problem with this environment")
    check.add_argument("--build", action="store_true", help="only what can be checked while building the image")
    check.add_argument("--probe", action="store_true", help="also do a live round trip on the archive remote")
    args = parser.parse_args(argv)
    mode = args.mode or "run"

    if mode == "check":
        from preflight.checks import main as preflight

        return preflight(["--build"] if args.build else ["--probe"] if args.probe else [])
    from bot.settings import Settings
    from runtime import logs
    from runtime.env import environment
    from sync import SyncError

    env = environment()  # .env may hold settings and secrets the process environment does not
    # The demo and play print a transcript: only errors may interrupt it.
    if mode in ("demo", "play"):
        logs.configure(level="ERROR", fmt="console", env=env)
    else:
        logs.configure(env=env)
    try:
        settings = Settings.from_env(env, dotenv=None)
    except SyncError as exc:  # every bad variable, one sentence (one line) each
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return ExitCode.CONFIG
    if mode == "demo":
        from bot.sim.demo import run_demo

        return asyncio.run(run_demo(lambda line: print(line, flush=True), settings))
    if mode == "play":
        from bot.sim.play import run_play

        return asyncio.run(run_play(settings))
    if not settings.discord_token:
        print("error: DISCORD_TOKEN is not set: put the bot token from the Discord developer portal in the "
              "environment (or in .env); to try Helix without one, run `python -m bot demo`.", file=sys.stderr)
        return ExitCode.CONFIG
    try:
        return asyncio.run(_run(settings))
    except SyncError as exc:  # the archive could not start (rclone missing, data dir unwritable, ...)
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG


if __name__ == "__main__":
    sys.exit(main())

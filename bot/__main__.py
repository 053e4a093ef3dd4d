"""``python -m bot [run|demo|play|check]``.

``run`` (the default) connects to Discord. Configuration problems end it with one sentence and
exit code 2, before any login. SIGTERM (Railway's stop) and SIGINT start the graceful stop:
new commands are refused, running uploads get HELIX_STOP_GRACE_S, rclone stops, the gateway
closes, exit 0. discord.py does not install these handlers itself.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

# Only the standard library up here: `python -m bot check` must be able to say "package X is
# missing" in one line, not die on importing it. Third-party imports wait until they are needed.


def install_stop_handlers(bot) -> asyncio.Future[None]:
    """SIGTERM and SIGINT start ``bot.shutdown()``; the future is done when that stop has finished.

    Also used by ``tests/fault_bot.py``, so the fault tests stop the bot exactly as Railway does.
    """
    import structlog

    log = structlog.get_logger("helix.bot")
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[None] = loop.create_future()

    def finished(task: asyncio.Task[None]) -> None:
        if not stopped.done():
            stopped.set_result(None)

    def on_signal(sig: signal.Signals) -> None:
        log.info("signal", signal=sig.name)
        task = asyncio.ensure_future(bot.shutdown())
        _stopping_tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(_stopping_tasks.discard)
        task.add_done_callback(finished)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    return stopped


_stopping_tasks: set[asyncio.Task[None]] = set()


async def _run(settings) -> int:
    import discord
    import structlog

    from bot.helix import HelixBot

    log = structlog.get_logger("helix.bot")

    async with HelixBot(settings) as bot:
        install_stop_handlers(bot)
        # The archive (outbox, rclone) opens before the login: a data directory that cannot be
        # written or a missing rclone ends the start with one sentence, not after a Discord login.
        await bot.open_archive()
        try:
            await bot.start(settings.discord_token)
        except discord.LoginFailure:
            print("error: Discord rejected DISCORD_TOKEN: copy the bot token again from the developer "
                  "portal (Bot → Reset Token) and set it.", file=sys.stderr)
            return 2
        except discord.PrivilegedIntentsRequired:
            print("error: the Message Content intent is not enabled: turn it on in the developer portal "
                  "(Bot → Privileged Gateway Intents).", file=sys.stderr)
            return 2
    log.info("stopped")
    return 0


def _settings():
    from bot.settings import Settings

    return Settings.from_env()


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
        from preflight import checks as preflight

        return preflight.main(["--build"] if args.build else ["--probe"] if args.probe else [])
    from runtime import logs
    from sync.errors import SyncError

    # The demo and play print a transcript: only errors may interrupt it.
    logs.configure(level="ERROR", fmt="console") if mode in ("demo", "play") else logs.configure()
    try:
        settings = _settings()
    except SyncError as exc:  # every bad variable, one sentence (one line) each
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    logs.refresh_secrets()  # .env may have added secrets to the environment: redact those too
    if mode == "demo":
        from bot.sim.demo import run_demo

        return asyncio.run(run_demo(lambda line: print(line, flush=True), settings))
    if mode == "play":
        from bot.sim.play import run_play

        return asyncio.run(run_play(settings))
    if not settings.discord_token:
        print("error: DISCORD_TOKEN is not set: put the bot token from the Discord developer portal in the "
              "environment (or in .env); to try Helix without one, run `python -m bot demo`.", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(settings))
    except SyncError as exc:  # the archive could not start (rclone missing, data dir unwritable, ...)
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

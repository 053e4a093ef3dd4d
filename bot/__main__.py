"""``python -m bot [run|demo|play|check]``.

``run`` (the default) connects to Discord, retrying while Discord is unreachable (bot/startup.py).
Configuration problems, a rejected token or a missing intent end it with one sentence and the
configuration exit code. SIGTERM (Railway's stop) and SIGINT start the
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


async def _run(settings, preflight: bool = False) -> int:
    import contextlib

    from bot.signals import install_stop_handlers
    from bot.startup import Startup, point_at
    from capture import Capture
    from runtime.health import HealthServer
    from sync import Archive

    point_at(settings.discord_api_base, settings.discord_gateway)
    startup = Startup(settings, retry_cap_s=settings.discord_retry_cap_s)
    install_stop_handlers(startup)  # SIGTERM is honoured from here on, in every phase
    async with contextlib.AsyncExitStack() as stack:
        # /health first: it must answer within seconds of the start whatever the login is doing,
        # or a Discord incident fails the deploy's health check.
        if settings.health:
            await stack.enter_async_context(HealthServer(settings.port, startup.readiness))
        if preflight:
            code = await _preflight(startup)
            if code is not None:
                return code
        # The archive (outbox, rclone) opens before the login and closes after the bot: a data
        # directory that cannot be written or a missing rclone ends the start with one sentence, and
        # queued items keep landing while Discord is unreachable.
        startup.archive = await stack.enter_async_context(
            Archive(settings.sync, stop_grace_s=settings.stop_grace_s))
        startup.capture = await stack.enter_async_context(Capture(settings.capture, startup.archive))
        looking = asyncio.ensure_future(_first_look(startup.archive))
        try:
            return await startup.run(settings.discord_token)
        finally:
            looking.cancel()
            await asyncio.gather(looking, return_exceptions=True)


async def _first_look(archive) -> None:
    """One live look at the archive remote as the bot starts, logged as a warning when it fails.

    Without ``--preflight`` nothing else looks before the first upload, and an undefined remote or a
    wrong crypt password would show only as a queue that never drains. It does not stop the start:
    the outbox keeps what arrives, and a remote that is down now may be up by then.
    """
    import structlog

    from sync import SyncError

    service = archive.service
    try:
        await service.ping()
        await service.check_readable_archive()
    except SyncError as exc:
        structlog.get_logger("helix.archive").warning("archive_remote_problem", remote=service.display,
                                                      kind=exc.kind, problem=exc.hint)


async def _preflight(startup) -> int | None:
    """The runtime preflight, in a thread while /health answers; its exit code when it failed or was stopped.

    In the same process as the bot, so a deploy pays for importing everything once, and the health
    check is answered from the start instead of after the preflight.
    """
    from bot.startup import Phase
    from preflight.checks import main as preflight

    startup.phase = Phase.PREFLIGHT
    checks = asyncio.ensure_future(asyncio.to_thread(preflight, []))
    stopped = asyncio.ensure_future(startup.wait_stop())
    try:
        await asyncio.wait({checks, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not checks.done():
        return ExitCode.OK  # SIGTERM: nothing started yet, nothing to stop
    code = checks.result()
    startup.phase = Phase.STARTING
    return code or (ExitCode.OK if startup.stop_requested else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Helix, the archiving Discord bot.")
    sub = parser.add_subparsers(dest="mode")
    run = sub.add_parser("run", help="connect to Discord with DISCORD_TOKEN (the default)")
    run.add_argument("--preflight", action="store_true",
                     help="run the preflight first, with /health already answering (what deploy_v15.3.sh does)")
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
    with_preflight = mode == "run" and getattr(args, "preflight", False)
    try:
        import structlog

        from bot.settings import Settings
        from runtime import logs
        from runtime.env import BadSetting, environment, unknown_settings
        from runtime.health import HealthServerError
        from sync import SyncError
    except ImportError:
        if not with_preflight:
            raise
        return _preflight_alone()  # it names the missing package

    try:
        env = environment()  # .env may hold settings and secrets the process environment does not
    except BadSetting as exc:  # a .env that cannot be read: the preflight could read no more of it
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    # The demo and play print a transcript: only errors may interrupt it.
    if mode in ("demo", "play"):
        logs.configure(level="ERROR", fmt="console", env=env)
    else:
        logs.configure(env=env)
        if not with_preflight:  # the preflight lists them itself, with everything else
            for sentence in unknown_settings(env):
                structlog.get_logger("helix.settings").warning("unknown_setting", problem=sentence)
    try:
        settings = Settings.from_env(env, dotenv=None)
    except SyncError as exc:  # every bad variable, one sentence (one line) each
        if with_preflight:
            return _preflight_alone()  # every problem at once, the settings among them
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return ExitCode.CONFIG
    if mode == "demo":
        from bot.sim.demo import run_demo

        try:
            return asyncio.run(run_demo(lambda line: print(line, flush=True), settings))
        except KeyboardInterrupt:  # Ctrl-C: the transcript so far stands; no traceback under it
            print("interrupted: the demo was stopped before it finished; run it again to see it all.",
                  file=sys.stderr)
            return ExitCode.INTERRUPTED
    if mode == "play":
        from bot.sim.play import run_play

        try:
            return asyncio.run(run_play(settings))
        except SyncError as exc:  # the simulated guild's archive could not start: a bad HELIX_ARCHIVE, ...
            print(f"error: {exc}", file=sys.stderr)
            return ExitCode.CONFIG
    if not settings.discord_token and with_preflight:
        return _preflight_alone()
    if not settings.discord_token:
        print("error: DISCORD_TOKEN is not set: put the bot token from the Discord developer portal in the "
              "environment (or in .env); to try Helix without one, run `python -m bot demo`.", file=sys.stderr)
        return ExitCode.CONFIG
    try:
        return asyncio.run(_run(settings, preflight=with_preflight))
    except SyncError as exc:  # the archive could not start (rclone missing, data dir unwritable, ...)
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except HealthServerError as exc:  # PORT taken or not bindable
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG


def _preflight_alone() -> int:
    """The preflight without a health server: what is wrong cannot even serve /health, so say all of it."""
    from preflight.checks import main as preflight

    return preflight([]) or ExitCode.CONFIG


if __name__ == "__main__":
    sys.exit(main())

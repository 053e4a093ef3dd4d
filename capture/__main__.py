"""``python -m capture``: what was captured from Discord, brought back without the bot.

    python -m capture restore <guild_id>/<channel_id> DEST

downloads a channel's segments, transcripts and the files they reference into DEST, a folder
that opens offline in a browser (DEST/index.html). A progress bar on a terminal, plain lines
otherwise. On failure: one sentence on stderr and exit code 1 (2 for a usage or setting mistake).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from capture.restore import RestoreError, parse_target, restore_channel
from runtime import logs
from runtime.env import environment
from runtime.exit_codes import ExitCode
from runtime.units import human_size
from sync import ConfigError, PathError, SyncError, SyncService, SyncSettings

BAR_WIDTH = 30


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m capture", description="Helix's captured Discord archive.")
    p.add_argument("-v", "--verbose", action="store_true", help="show the service's log lines on stderr")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("restore", help="download a channel's archive into a folder that opens offline")
    r.add_argument("target", help="<guild_id>/<channel_id>")
    r.add_argument("dest", help="folder to restore into (created if missing)")
    return p


class Meter:
    """A bar redrawn in place on a terminal; one line per file where output is a file or a pipe."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def __call__(self, done: int, total: int, what: str) -> None:
        if not self.tty:
            print(f"restored {done}/{total} {what}", flush=True)
            return
        filled = round(BAR_WIDTH * done / max(total, 1))
        name = what.rsplit("/", 1)[-1][:40]
        sys.stdout.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} {name:<40}")
        sys.stdout.flush()

    def finish(self) -> None:
        if self.tty:
            sys.stdout.write("\n")


async def _run(args: argparse.Namespace, env: dict[str, str]) -> int:
    guild_id, channel_id = parse_target(args.target)
    dest: Path = args.dest
    meter = Meter(sys.stdout.isatty())
    async with SyncService(SyncSettings.from_env(env)) as svc:
        try:
            done = await restore_channel(svc, guild_id, channel_id, dest, meter)
        finally:
            meter.finish()
    print(f"restored {done.files} files ({human_size(done.bytes)}) into {done.folder}; open {done.index} "
          "in a browser")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.dest = Path(args.dest).expanduser().resolve()
    env = environment()
    logs.configure(level="INFO" if args.verbose else "CRITICAL", fmt="console", stream=sys.stderr, env=env)
    try:
        return asyncio.run(_run(args, env))
    except (ConfigError, PathError, RestoreError) as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return ExitCode.CONFIG
    except SyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except OSError as exc:
        print(f"error: cannot write the restored files ({exc.strerror or exc}): choose a writable DEST.",
              file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

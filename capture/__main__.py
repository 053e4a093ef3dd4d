"""``python -m capture``: what was captured from Discord, brought back without the bot.

    python -m capture restore <guild_id>/<channel_id> DEST

downloads a channel's segments, transcripts and the files they reference, and its threads' (a
forum's posts), into DEST, a folder that opens offline in a browser (DEST/index.html), with pages
that show each message as it stands now. A progress bar on a terminal, plain lines otherwise.

Exit codes: 0 when everything was restored; 1 when the archive failed, or when files the
segments refer to were missing on the remote (the rest is restored and the index written, and a
sentence names what is missing: running it again cannot bring those back, a script should know);
2 for a usage or setting mistake (a bad target, a channel the archive does not hold, a .env that
cannot be read, a crypt archive read with the wrong passwords, an empty DEST, a DEST that is a
file, the filesystem's root or the home folder, cannot be written, or holds something other than an
earlier restore of the same channel); 130 on Ctrl-C, after saying how far it got (running the same
command again finishes it: a DEST a restore was writing is taken up again).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from capture.restore import SHOWN_MISSING, Restored, RestoreError, check_destination, parse_target, restore_channel
from runtime import logs
from runtime.env import BadSetting, environment
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
    r.add_argument("dest", help="a new or empty folder to restore into (created if missing), or an earlier "
                                "restore of the same channel to finish or refresh")
    return p


class Meter:
    """A bar redrawn in place on a terminal; one line per file where output is a file or a pipe."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.done = self.total = 0

    def __call__(self, done: int, total: int, what: str) -> None:
        self.done, self.total = done, total
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


async def _run(args: argparse.Namespace, env: dict[str, str], meter: Meter) -> int:
    guild_id, channel_id = parse_target(args.target)
    dest = await asyncio.to_thread(check_destination, args.dest)  # before rclone starts: a refusal leaves no trace
    async with SyncService(SyncSettings.from_env(env)) as svc:
        try:
            done = await restore_channel(svc, guild_id, channel_id, dest, meter)
        finally:
            meter.finish()
    print(f"restored {done.files} files ({human_size(done.bytes)}) into {done.folder}; open {done.index} "
          "in a browser")
    for sentence in _shortfalls(done):
        print(f"error: {sentence}", file=sys.stderr)
    return ExitCode.FAILED if done.missing or done.unsafe else ExitCode.OK


def _listed(paths: tuple[str, ...]) -> str:
    shown = ", ".join(paths[:SHOWN_MISSING])
    return shown + (f" and {len(paths) - SHOWN_MISSING} more" if len(paths) > SHOWN_MISSING else "")


def _shortfalls(done: Restored) -> list[str]:
    out = []
    if done.unsafe:
        n = len(done.unsafe)
        out.append(f"skipped {n} file{'s' if n > 1 else ''} whose path in a segment is not a blob path "
                   f"({_listed(done.unsafe)}): the segment was changed outside Helix; the pages leave "
                   f"{'them' if n > 1 else 'it'} unlinked.")
    if done.missing:
        n = len(done.missing)
        out.append(f"{n} file{'s are' if n > 1 else ' is'} missing on the archive remote ({_listed(done.missing)}): "
                   "the rest is restored, and the pages show a broken link where "
                   f"{'they were' if n > 1 else 'it was'}.")
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.dest.strip():
        print("error: DEST is empty: give the folder to restore into, for example ./restored.", file=sys.stderr)
        return ExitCode.CONFIG
    args.dest = Path(args.dest).expanduser().resolve()
    try:
        env = environment()
    except BadSetting as exc:  # a .env that cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    logs.configure(level="INFO" if args.verbose else "CRITICAL", fmt="console", stream=sys.stderr, env=env)
    meter = Meter(sys.stdout.isatty())
    try:
        return asyncio.run(_run(args, env, meter))
    except (ConfigError, PathError, RestoreError) as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return ExitCode.CONFIG
    except SyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except OSError as exc:
        print(f"error: cannot write DEST {args.dest} ({exc.strerror or exc}): choose a writable folder.",
              file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        print(f"restore interrupted: {meter.done} of {meter.total} files in {args.dest}; run the same command "
              "again to finish", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

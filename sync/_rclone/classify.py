"""Turning rclone's error texts into Helix's typed errors, each with a sentence and a fix.

rclone reports failures as free text (``couldn't login``, ``401 Unauthorized``, ``connection
refused``...). The table below is ordered: the first matching pattern decides. Texts that
match nothing are treated as temporary, so the outbox keeps the item rather than losing it.
"""

from __future__ import annotations

import re
from pathlib import Path

from sync.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    OperationTimeout,
    QuotaError,
    RemoteNotConfigured,
    SyncError,
    TemporaryError,
)

# Failures of the local file system under a local archive root: no retry makes them go away, and
# they are about the folder, so every waiting item would fail the same way.
_LOCAL_FS = re.compile(r"permission denied|operation not permitted|read-only file system|not a directory|"
                       r"is a file|no space left|file exists", re.I)
_LOCAL_ROOT = re.compile(r"^(/|:local[,:]|[A-Za-z]:[\\/])")

_NOT_DEFINED = re.compile(r"didn't find section in config file|config file .* not found|unknown backend|"
                          r"couldn't find (backend|remote)", re.I)

_RULES: list[tuple[re.Pattern[str], type[SyncError], str]] = [
    (re.compile(r"failed to load config file|decrypt configuration|RCLONE_CONFIG_PASS", re.I),
     ConfigError,
     "rclone could not read its configuration ({detail}): RCLONE_CONFIG must name an rclone.conf file, and "
     "an encrypted one needs RCLONE_CONFIG_PASS set to its password."),
    (re.compile(r"didn't find backend called", re.I),
     ConfigError,
     "The archive remote {remote} has a type rclone does not know ({detail}): set RCLONE_CONFIG_{upper}_TYPE "
     "to one of rclone's backends, such as s3, webdav, sftp, drive, mega or crypt."),
    (re.compile(r"is it obscured|revealing password", re.I),
     ConfigError,
     "A password of the archive remote {remote} is not obscured: set it to the output of "
     "`rclone obscure PASSWORD`."),
    (_NOT_DEFINED,
     RemoteNotConfigured,
     "The archive remote {remote} is not defined: set RCLONE_CONFIG_{upper}_TYPE and its options "
     "(or point RCLONE_CONFIG at an rclone.conf that defines it)."),
    (re.compile(r"couldn't login|login failed|\b401\b|unauthori[sz]ed|authentication|invalid_grant|"
                r"access ?denied|InvalidAccessKeyId|SignatureDoesNotMatch|403 forbidden|"
                r"bad password|wrong password|couldn't decrypt|failed to authenticate|"
                r"ssh: handshake failed|unable to authenticate", re.I),
     AuthError,
     "The archive remote {remote} rejected the login: check its user and password "
     "(MEGA/WebDAV passwords must be the output of `rclone obscure`)."),
    (re.compile(r"quota|insufficient storage|\b507\b|storage (is )?full|no space left|"
                r"over (the )?limit|EntityTooLarge", re.I),
     QuotaError,
     "The archive remote {remote} is full or over its quota: free space there or raise the quota."),
    (re.compile(r"context deadline exceeded|deadline exceeded|timed out|timeout", re.I),
     OperationTimeout,
     "The archive remote {remote} did not answer in time: it may be slow or down; "
     "Helix will retry, or raise HELIX_IO_TIMEOUT_S."),
    (re.compile(r"object not found|directory not found|not found|no such file|\b404\b|NoSuchBucket|"
                r"NoSuchKey|doesn't exist|does not exist", re.I),
     NotFoundError,
     "Something on the archive remote {remote} was not found: check that the path in "
     "HELIX_ARCHIVE exists (create the bucket or folder)."),
    (re.compile(r"connection refused|no such host|connection reset|broken pipe|EOF|network is unreachable|"
                r"\b50[0234]\b|\b429\b|too many requests|TLS handshake|temporar|i/o", re.I),
     TemporaryError,
     "The archive remote {remote} is unreachable right now ({short}): Helix retries with backoff; "
     "check that the server is up."),
]


def _detail(text: str) -> str:
    """rclone's own words, one line and short: a panic's stack or a long listing stays in the log."""
    line = text.split("\n", 1)[0].removeprefix("panic received: ").removeprefix("fatal error: ")
    return line[:160].strip()


def _short(text: str) -> str:
    for probe in ("permission denied", "operation not permitted", "read-only file system", "not a directory",
                  "is a file", "no space left", "file exists", "connection refused", "no such host",
                  "connection reset", "EOF", "429", "503", "502", "500", "TLS handshake", "i/o timeout"):
        if probe.lower() in text.lower():
            return probe
    return "network error"


def classify(error_text: str, remote: str, *, config_file: str | None = None) -> SyncError:
    """Map an rclone error text to a typed error whose message names ``remote`` and the fix.

    ``config_file``: RCLONE_CONFIG, when set. rclone goes on without a config file it cannot find,
    so a remote defined in it is then "not defined", and the missing file is the thing to name."""
    name = remote.split(":", 1)[0] if ":" in remote else remote
    upper = re.sub(r"[^A-Za-z0-9]", "_", name.lstrip(":")).upper() or "NAME"
    shown = f"'{remote}'"
    if config_file and not Path(config_file).expanduser().is_file() and _NOT_DEFINED.search(error_text):
        return RemoteNotConfigured(f"The archive remote {shown} is not defined: RCLONE_CONFIG points to {config_file}, "
                                   f"which does not exist; fix the path, or define the remote with "
                                   f"RCLONE_CONFIG_{upper}_TYPE and its options.", detail=error_text[:2000])
    if _LOCAL_ROOT.match(remote) and _LOCAL_FS.search(error_text):
        return ConfigError(f"The local archive folder {shown} cannot be written ({_short(error_text)}): make it a "
                           "folder this user can write, or point HELIX_ARCHIVE at one.", detail=error_text[:2000])
    for pattern, cls, template in _RULES:
        if pattern.search(error_text):
            return cls(template.format(remote=shown, upper=upper, short=_short(error_text), detail=_detail(error_text)),
                       detail=error_text[:2000])
    return TemporaryError(
        f"The archive remote {shown} failed ({error_text[:120].strip()}): Helix will retry; "
        "if it keeps failing, probe the archive to see which step fails.",
        detail=error_text[:2000],
    )

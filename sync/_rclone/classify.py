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
    LocalDiskFull,
    NotFoundError,
    OperationTimeout,
    QuotaError,
    RemoteNotConfigured,
    SyncError,
    TemporaryError,
)

# Failures of the local file system under a local archive root: no retry makes them go away, and
# they are about the folder, so every waiting item would fail the same way. (A full disk is told
# apart: see LOCAL_DISK_FULL.)
_LOCAL_FS = re.compile(r"permission denied|operation not permitted|read-only file system|not a directory|"
                       r"is a file|file exists", re.I)
_LOCAL_ROOT = re.compile(r"^(/|:local[,:]|[A-Za-z]:[\\/])")

_NOT_DEFINED = re.compile(r"didn't find section in config file|config file .* not found|unknown backend|"
                          r"couldn't find (backend|remote)", re.I)

# A wrapping backend (crypt, alias, chunker...) whose underlying remote rclone cannot build: the fix is
# the underlying remote's definition, which rclone names in quotes.
_WRAPPED = re.compile(r'failed to make remote "(?P<inner>[^"]*)" to wrap: (?P<why>.*)', re.I | re.S)
# rclone's own words for a connection string (``:backend,opt=value:path``) it cannot parse.
_CONNECTION_STRING = re.compile(r"config parameters may only contain|config parameters can't be empty|"
                                r"expecting `:` or `,`|couldn't parse config item|config name contains invalid|"
                                r"unsupported protocol scheme", re.I)
_NO_PASSWORD = re.compile(r"password not set in config file", re.I)
_BUCKET = re.compile(r"CreateBucket.*StatusCode: 400|InvalidBucketName|bucket name must", re.I | re.S)
# A disk on this machine is full: rclone's local backend preallocates (``preallocate: file too big for
# remaining disk space``) or the kernel says ENOSPC. On a download it is the destination's disk; on an
# upload to a local archive root, the archive's.
LOCAL_DISK_FULL = re.compile(r"preallocate|no space left on device|disk quota exceeded", re.I)

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
     "The archive remote {remote} did not answer in time: check that its server is up, "
     "or raise HELIX_IO_TIMEOUT_S if it is only slow."),
    (re.compile(r"object not found|directory not found|not found|no such file|\b404\b|NoSuchBucket|"
                r"NoSuchKey|doesn't exist|does not exist", re.I),
     NotFoundError,
     "Something on the archive remote {remote} was not found: check that the path in "
     "HELIX_ARCHIVE exists (create the bucket or folder)."),
    (re.compile(r"connection refused|no such host|connection reset|broken pipe|EOF|network is unreachable|"
                r"\b50[0234]\b|\b429\b|too many requests|TLS handshake|temporar|i/o", re.I),
     TemporaryError,
     "The archive remote {remote} is unreachable right now ({short}): check that the server is up and "
     "that the address in the remote's settings is right."),
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
    if _LOCAL_ROOT.match(remote) and LOCAL_DISK_FULL.search(error_text):
        # A QuotaError, as a full remote is: it says nothing about one item and everything about the archive
        # (every waiting item fails with it at once, none rewriting its bytes onto a full disk on every retry),
        # and only the operator frees space; members are told the archive is full.
        return QuotaError(f"The disk holding the archive folder {shown} is full ({_detail(error_text)[:80]}): free "
                          "space on it, or point HELIX_ARCHIVE at a folder on a disk with room.",
                          detail=error_text[:2000])
    if _LOCAL_ROOT.match(remote) and _LOCAL_FS.search(error_text):
        return ConfigError(f"The local archive folder {shown} cannot be written ({_short(error_text)}): make it a "
                           "folder this user can write, or point HELIX_ARCHIVE at one.", detail=error_text[:2000])
    special = _special(error_text, remote, name, upper, shown)
    if special is not None:
        return special
    for pattern, cls, template in _RULES:
        if pattern.search(error_text):
            return cls(template.format(remote=shown, upper=upper, short=_short(error_text), detail=_detail(error_text)),
                       detail=error_text[:2000])
    # Unknown: kept as temporary so the outbox holds on to the item, but the sentence promises no
    # retry, since a command line that prints it has stopped trying.
    return TemporaryError(
        f"The archive remote {shown} failed ({_detail(error_text)[:120]}): run `python -m sync probe` to see "
        "which step fails, and check the remote's settings.",
        detail=error_text[:2000],
    )


def _env_prefix(name: str) -> str:
    return "RCLONE_CONFIG_" + (re.sub(r"[^A-Za-z0-9]", "_", name).upper() or "NAME") + "_"


def _special(text: str, remote: str, name: str, upper: str, shown: str) -> SyncError | None:
    """The failures whose sentence needs more than the remote's name: another remote, an option, a bucket."""
    on_the_fly = remote.startswith(":")
    detail = text[:2000]
    wrapped = _WRAPPED.search(text)
    if wrapped and (_NOT_DEFINED.search(wrapped.group("why")) or "didn't find backend" in wrapped.group("why")):
        inner = wrapped.group("inner")
        inner_name = inner.split(":", 1)[0] if ":" in inner else inner
        where = ("the connection string in HELIX_ARCHIVE" if on_the_fly else f"RCLONE_CONFIG_{upper}_REMOTE")
        if not inner_name or inner_name.startswith(":"):
            return ConfigError(f"The archive remote {shown} wraps '{inner}', which rclone cannot open "
                               f"({_detail(wrapped.group('why'))}): fix {where}.", detail=detail)
        return RemoteNotConfigured(
            f"The archive remote {shown} wraps the remote '{inner_name}' ({where} is '{inner}'), which is not "
            f"defined: define it with {_env_prefix(inner_name)}TYPE and its options (or in the rclone.conf "
            f"RCLONE_CONFIG points at), or set {where} to a remote that exists.", detail=detail)
    if _NO_PASSWORD.search(text):
        if on_the_fly:
            fix = "add password='<output of rclone obscure>' to the connection string in HELIX_ARCHIVE"
        else:
            fix = (f"set RCLONE_CONFIG_{upper}_PASSWORD (and RCLONE_CONFIG_{upper}_PASSWORD2 if the archive was "
                   "written with a second one) to the output of `rclone obscure 'your password'`")
        return ConfigError(f"The archive remote {shown} is encrypted (crypt) but has no password: {fix}.",
                           detail=detail)
    if on_the_fly and _CONNECTION_STRING.search(text):
        # The connection string itself is never repeated: it may carry a password inline.
        return ConfigError(
            f"HELIX_ARCHIVE's connection string for {shown} is malformed ({_detail(text)[:100]}): write it as "
            ":backend,option=value:path, with option names of letters, digits and _, and any value holding "
            "':' or ',' in single quotes (url='https://host/dav'); or define a named remote with "
            "RCLONE_CONFIG_<NAME>_TYPE and its options.", detail=detail)
    if not on_the_fly and "unsupported protocol scheme" in text.lower():
        return ConfigError(f"The address of the archive remote {shown} is not a URL: set RCLONE_CONFIG_{upper}_URL "
                           "(or url in its rclone.conf section) to one starting with https:// or http://.",
                           detail=detail)
    if _BUCKET.search(text):
        path = remote.split(":", 1)[1] if ":" in remote else ""
        bucket = path.strip("/").split("/", 1)[0]
        if not bucket:
            return ConfigError(f"HELIX_ARCHIVE {shown} names no bucket, and this storage keeps everything in "
                               f"buckets: add one after the colon, as in {remote.rstrip(':/')}:helix-archive "
                               f"(or {remote.rstrip(':/')}:helix-archive/prefix).", detail=detail)
        return ConfigError(f"The bucket '{bucket}' in HELIX_ARCHIVE {shown} is not a valid bucket name: use 3 to 63 "
                           "lowercase letters, digits, '-' and '.', starting with a letter or digit.", detail=detail)
    return None


def local_disk_full(text: str, dest: str) -> SyncError | None:
    """A download that failed because the disk under ``dest`` is full, named as such: the remote is fine,
    and no retry frees space."""
    if not LOCAL_DISK_FULL.search(text):
        return None
    return LocalDiskFull(f"The disk holding {dest} is full ({_detail(text)[:80]}): free space there, or choose a "
                         "folder on a disk with room; the archive itself is fine.", detail=text[:2000])

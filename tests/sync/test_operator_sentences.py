"""An operator's sessions with ``python -m sync`` against real remotes, where rclone's own words would
mislead: a crypt over a remote that does not exist, a crypt without its password, an S3 archive with
no bucket, a malformed connection string (or one without its path, whose password must not be
repeated), a download onto a full disk, an upload into an archive folder on a full disk, a wrong
crypt password, a typo in a variable's name, a stray space, and an upload interrupted half-way.
Each ends in one sentence naming the thing to fix, and none promises a retry that a command line
that has exited cannot make.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sync
from sync import SyncService, SyncSettings
from tests.support.remotes import LoopbackRemote, obscure
from tests.sync.test_cli_mistakes import ROOT, assert_one_sentence, run

NEVER = ("Helix will retry", "Helix retries", "will upload it again")


def crypt_env(base: str, password: str | None, archive: str = "secret:helix") -> dict[str, str]:
    env = {"RCLONE_CONFIG_SECRET_TYPE": "crypt", "RCLONE_CONFIG_SECRET_REMOTE": base, "HELIX_ARCHIVE": archive}
    if password is not None:
        env["RCLONE_CONFIG_SECRET_PASSWORD"] = obscure(password)
    return env


def note(tmp_path: Path) -> Path:
    src = tmp_path / "note.txt"
    src.write_text("minutes of the meeting\n")
    return src


def no_retry_promised(text: str) -> None:
    assert not any(p in text for p in NEVER), text


# -- rclone's failures, named with their fix ------------------------------------------------------


def test_a_crypt_over_an_undefined_remote_names_that_remote(tmp_path: Path) -> None:
    env = {"HELIX_DATA_DIR": str(tmp_path / "data"), **crypt_env("nodav:x", "pw")}
    out = run("upload", str(note(tmp_path)), env=env)
    said = assert_one_sentence(out, "'nodav'", "RCLONE_CONFIG_NODAV_TYPE", "RCLONE_CONFIG_SECRET_REMOTE")
    no_retry_promised(said)
    assert out.returncode == 1


def test_a_crypt_without_its_password_names_the_variable(tmp_path: Path) -> None:
    env = {"HELIX_DATA_DIR": str(tmp_path / "data"), **crypt_env(str(tmp_path / "base"), None)}
    out = run("upload", str(note(tmp_path)), env=env)
    said = assert_one_sentence(out, "RCLONE_CONFIG_SECRET_PASSWORD", "rclone obscure")
    no_retry_promised(said)
    assert out.returncode == 2


@pytest.mark.parametrize("archive", [":webdav,u-rl=x:helix", ":webdav,url=http://127.0.0.1:9/:helix",
                                     ":s3,provider=AWS,env_auth=maybe:helix"],
                         ids=["bad-option-name", "unquoted-url", "bad-value"])
def test_a_malformed_connection_string_says_how_to_write_one(tmp_path: Path, archive: str) -> None:
    out = run("upload", str(note(tmp_path)), env={"HELIX_DATA_DIR": str(tmp_path / "data"), "HELIX_ARCHIVE": archive,
                                                  "HELIX_RETRIES": "0"})
    said = assert_one_sentence(out, "connection string", "single quotes")
    no_retry_promised(said)
    assert out.returncode == 2


def test_a_connection_string_without_its_path_is_refused_without_repeating_its_password(tmp_path: Path) -> None:
    """HELIX_ARCHIVE defined inline, the trailing ``:path`` forgotten: the URL's user:password and the
    obscured ``pass=`` must not reach the terminal (nor the preflight's report, nor Railway's log)."""
    password = obscure("hunter2-the-real-one")
    archive = f":webdav,url='https://alice:Sup3rS3cret@dav.example.com/dav',pass={password}"
    out = run("about", env={"HELIX_DATA_DIR": str(tmp_path / "data"), "HELIX_ARCHIVE": archive})
    assert out.returncode == 2
    said = assert_one_sentence(out, "HELIX_ARCHIVE ':webdav,…'", ":path is missing", "':webdav,…:helix'")
    assert "Sup3rS3cret" not in said + out.stdout and password not in said + out.stdout, said


def test_an_s3_archive_without_a_bucket_says_it_needs_one(tmp_path: Path, s3: LoopbackRemote) -> None:
    env = {"HELIX_DATA_DIR": str(tmp_path / "data"), **s3.env(), "HELIX_ARCHIVE": "loop:"}
    out = run("upload", str(note(tmp_path)), env=env)
    said = assert_one_sentence(out, "names no bucket", "loop:helix-archive", "HELIX_ARCHIVE")
    no_retry_promised(said)
    assert out.returncode == 2


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB filesystem: a disk with no room left for the operator's restore folder, or the archive."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_download_onto_a_full_disk_names_that_disk_not_the_remote(
        tmp_path: Path, data_dir: Path, webdav: LoopbackRemote, full_disk: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    async with SyncService(webdav.settings(data_dir)) as svc:
        await svc.archive(big, "files/big.bin")
        with pytest.raises(sync.LocalDiskFull) as failed:
            await svc.fetch("files/big.bin", full_disk / "big.bin")
        with pytest.raises(sync.LocalDiskFull) as failed_tree:
            await svc.fetch_tree("files", full_disk / "tree", ["/big.bin"])
        assert svc.last_error is None, "a full local disk was blamed on the remote"
    for err in (failed.value, failed_tree.value):
        said = str(err)
        assert "full" in said and str(full_disk) in said and "archive itself is fine" in said, said
        assert not err.retryable
        no_retry_promised(said)


def test_an_upload_into_an_archive_folder_on_a_full_disk_says_the_disk_is_full(tmp_path: Path,
                                                                                 full_disk: Path) -> None:
    """rclone's local backend says "preallocate: file too big for remaining disk space": that is the disk
    under HELIX_ARCHIVE, not a remote whose settings to check, and only freeing space fixes it."""
    video = tmp_path / "video.bin"
    video.write_bytes(os.urandom(3 * 1024 * 1024))
    archive = full_disk / "archive"
    out = run("upload", str(video), env={"HELIX_DATA_DIR": str(tmp_path / "data"), "HELIX_ARCHIVE": str(archive),
                                         "HELIX_RETRIES": "0"})
    assert out.returncode == 1
    said = assert_one_sentence(out, f"The disk holding the archive folder '{archive}' is full", "free space",
                               "HELIX_ARCHIVE")
    assert "remote's settings" not in said and "probe" not in said, said
    no_retry_promised(said)


# -- a wrong crypt password ------------------------------------------------------------------------


def test_a_wrong_crypt_password_is_caught_before_a_second_archive(tmp_path: Path, webdav: LoopbackRemote) -> None:
    data = str(tmp_path / "data")
    dav = LoopbackRemote(kind="webdav", root=webdav.root, name="dav", user=webdav.user, password=webdav.password,
                         port=webdav.port)  # the same server, defined as 'dav'
    first = run("upload", str(note(tmp_path)), "minutes/note.txt",
                env={"HELIX_DATA_DIR": data, **dav.env(), **crypt_env("dav:x", "right")})
    assert first.returncode == 0, first.stderr
    stored = sorted(p for p in webdav.root.rglob("*") if p.is_file())

    wrong = {"HELIX_DATA_DIR": data, **dav.env(), **crypt_env("dav:x", "wrong")}
    listed = run("ls", env=wrong)
    assert listed.stdout == ""  # what rclone shows: nothing, which is how the second archive began
    probe = run("probe", env=wrong)
    assert probe.returncode == 1
    said = probe.stderr.strip().splitlines()[-1]
    for needle in ("'secret' shows nothing", "'dav:x'", "RCLONE_CONFIG_SECRET_PASSWORD", "RCLONE_CONFIG_SECRET_REMOTE"):
        assert needle in said, (needle, said)
    assert obscure("wrong") not in probe.stderr + probe.stdout and "wrong" not in said
    assert sorted(p for p in webdav.root.rglob("*") if p.is_file()) == stored, "the probe wrote beside the archive"

    right = run("probe", env={"HELIX_DATA_DIR": data, **dav.env(), **crypt_env("dav:x", "right")})
    assert right.returncode == 0, right.stderr


async def test_check_readable_archive_is_the_sync_layers_own_face(tmp_path: Path, webdav: LoopbackRemote) -> None:
    """What the catalogue's rebuild calls before it takes an empty listing for an empty archive."""
    dav = LoopbackRemote(kind="webdav", root=webdav.root, name="dav", user=webdav.user, password=webdav.password,
                         port=webdav.port)

    def settings(password: str) -> SyncSettings:
        env = crypt_env("dav:x", password)
        return SyncSettings(archive=env.pop("HELIX_ARCHIVE"), data_dir=tmp_path / "data", retries=0,
                            extra_env={**dav.env(), **env})

    async with SyncService(settings("right")) as svc:
        await svc.check_readable_archive()  # empty: nothing to mistake
        await svc.archive(note(tmp_path), "a/note.txt")
        await svc.check_readable_archive()
    async with SyncService(settings("wrong")) as svc:
        with pytest.raises(sync.ArchiveUnreadable) as unreadable:
            await svc.check_readable_archive()
    assert "RCLONE_CONFIG_SECRET_PASSWORD" in unreadable.value.hint and not unreadable.value.retryable


# -- names an operator mistypes --------------------------------------------------------------------


def test_a_mistyped_variable_is_flagged_with_the_name_it_meant(tmp_path: Path) -> None:
    out = run("about", env={"HELIX_DATA_DIR": str(tmp_path), "HELIX_ARCHVE": str(tmp_path / "elsewhere"),
                            "HELIX_KEEP_LOCALS": "1"})
    assert out.returncode == 0, out.stderr
    assert "warning: HELIX_ARCHVE is set but Helix reads no such variable, so it is ignored: did you mean " \
           "HELIX_ARCHIVE?" in out.stderr, out.stderr
    assert "did you mean HELIX_KEEP_LOCAL?" in out.stderr, out.stderr


def test_a_space_after_the_colon_is_refused_not_made_a_folder(tmp_path: Path, webdav: LoopbackRemote) -> None:
    env = {"HELIX_DATA_DIR": str(tmp_path / "data"), **webdav.env(), "HELIX_ARCHIVE": "loop: arch"}
    out = run("upload", str(note(tmp_path)), env=env)
    assert out.returncode == 2
    assert_one_sentence(out, "'loop: arch'", "loop:arch")
    assert not any(webdav.root.iterdir()), "a folder was created on the remote"


# -- an upload interrupted ------------------------------------------------------------------------


def partials(remote: LoopbackRemote) -> set[Path]:
    return set(remote.root.rglob("*.helix-partial-*"))


def upload_until_staged(tmp_path: Path, remote: LoopbackRemote) -> tuple[subprocess.Popen[str], set[Path]]:
    """Start a slow upload (a 300 KB/s uplink) and return once its partial is on the remote."""
    big = tmp_path / "big.bin"
    if not big.exists():
        big.write_bytes(os.urandom(3_000_000))
    before = partials(remote)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HELIX_", "RCLONE_CONFIG"))}
    env = {**base, "PYTHONPATH": str(ROOT), **remote.env(), "HELIX_DATA_DIR": str(tmp_path / "data"),
           "HELIX_ARCHIVE": "loop:arch", "HELIX_BWLIMIT": "300K"}
    proc = subprocess.Popen([sys.executable, "-m", "sync", "upload", str(big), "x/big.bin"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not partials(remote) - before:
        assert proc.poll() is None and time.monotonic() < deadline, "the upload never staged its partial"
        time.sleep(0.02)
    return proc, partials(remote) - before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_upload_says_so_and_leaves_no_partial(tmp_path: Path, webdav: LoopbackRemote,
                                                              sig: signal.Signals) -> None:
    proc, _ = upload_until_staged(tmp_path, webdav)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.startswith("interrupted: nothing was archived") and "Traceback" not in err, err
    assert not partials(webdav), "the partial upload was left on the remote"
    assert not webdav.has("arch/x/big.bin")


def test_the_next_upload_removes_what_a_kill_left(tmp_path: Path, webdav: LoopbackRemote) -> None:
    proc, left = upload_until_staged(tmp_path, webdav)
    proc.kill()
    proc.communicate(timeout=30)
    assert partials(webdav) == left  # nothing could clean up after a kill -9
    out = run("upload", str(tmp_path / "big.bin"), "x/big.bin",
              env={"HELIX_DATA_DIR": str(tmp_path / "data"), **webdav.env(), "HELIX_ARCHIVE": "loop:arch"})
    assert out.returncode == 0, out.stderr
    assert not partials(webdav) and webdav.has("arch/x/big.bin")

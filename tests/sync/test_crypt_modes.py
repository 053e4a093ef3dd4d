"""A crypt archive opened with the wrong password, in each of the ways rclone's crypt can treat names.

With standard name encryption a wrong key hides every name, which a count of names shows. With
obfuscated names, names left unencrypted, or folder names left plain, the names at the top are still
listed (garbled, or as they are), so counting them does not give the key away. Each archive here is laid out
as Helix lays one out (files only inside folders), written with the right password, then opened
again: the wrong password is named before anything is written, the right one passes, and an empty
archive passes with any password.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sync
from sync import SyncService, SyncSettings
from tests.support.remotes import LoopbackRemote, obscure
from tests.sync.test_cli_mistakes import run

RIGHT = "correct horse battery"
WRONG = "wrong horse staple"
MODES = {
    "obfuscated-names": {"FILENAME_ENCRYPTION": "obfuscate"},
    "plain-folder-names": {"DIRECTORY_NAME_ENCRYPTION": "false"},
    "names-not-encrypted": {"FILENAME_ENCRYPTION": "off"},
    "standard": {},
}
LOOSE = ["obfuscated-names", "plain-folder-names", "names-not-encrypted"]  # a count of the top says nothing


def vault_env(webdav: LoopbackRemote, mode: str, obscured: str) -> dict[str, str]:
    """A crypt remote 'vault' over the loopback WebDAV server's folder vault/, as RCLONE_CONFIG_* sets it."""
    n = "RCLONE_CONFIG_VAULT_"
    return {**webdav.env(), n + "TYPE": "crypt", n + "REMOTE": f"{webdav.archive}vault", n + "PASSWORD": obscured,
            **{n + option: value for option, value in MODES[mode].items()}}


def settings(webdav: LoopbackRemote, data_dir: Path, mode: str, obscured: str) -> SyncSettings:
    return SyncSettings(archive="vault:", data_dir=data_dir, retries=0, extra_env=vault_env(webdav, mode, obscured))


async def archive_like_helix(svc: SyncService, tmp_path: Path) -> None:
    """A channel's manifest and an attachment, each a few folders down, as a backup leaves them."""
    manifest = tmp_path / "channel.json"
    manifest.write_text('{"name": "general", "topic": "the launch"}\n')
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(200_000))
    await svc.archive(manifest, "discord/1/2/channel.json")
    await svc.archive(blob, "blobs/sha256/ab/" + "ab" * 32)


def stored(webdav: LoopbackRemote) -> dict[str, int]:
    return {p.relative_to(webdav.storage).as_posix(): p.stat().st_size for p in webdav.storage.rglob("*")}


@pytest.mark.parametrize("mode", list(MODES))
async def test_the_wrong_password_is_named_before_anything_is_written(
        mode: str, webdav: LoopbackRemote, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    right, wrong = obscure(RIGHT), obscure(WRONG)
    async with SyncService(settings(webdav, data_dir, mode, right)) as svc:
        await archive_like_helix(svc, tmp_path)
    before = stored(webdav)

    async with SyncService(settings(webdav, data_dir, mode, wrong)) as svc:
        with pytest.raises(sync.ArchiveUnreadable) as unreadable:
            await svc.check_readable_archive()
        report = await svc.probe()
    said = unreadable.value.hint
    for needle in ("'vault'", "'loop:vault'", "decrypt", "RCLONE_CONFIG_VAULT_PASSWORD", "RCLONE_CONFIG_VAULT_REMOTE",
                   "new, empty folder"):
        assert needle in said, (needle, said)
    assert not unreadable.value.retryable
    assert report.failed is not None and report.failed.name == "readable", report
    assert isinstance(report.failed.error, sync.ArchiveUnreadable)
    assert stored(webdav) == before, "the check or the probe wrote beside the archive"
    out = capsys.readouterr()
    everything = " ".join([said, unreadable.value.detail or "", out.out, out.err, caplog.text])
    for secret in (RIGHT, WRONG, right, wrong):
        assert secret not in everything


@pytest.mark.parametrize("mode", list(MODES))
async def test_the_right_password_passes(mode: str, webdav: LoopbackRemote, data_dir: Path, tmp_path: Path) -> None:
    right = obscure(RIGHT)
    async with SyncService(settings(webdav, data_dir, mode, right)) as svc:
        await archive_like_helix(svc, tmp_path)
    async with SyncService(settings(webdav, data_dir, mode, obscure(RIGHT))) as svc:
        await svc.check_readable_archive()
        kept = await svc.remote.rc.call("operations/list", {"fs": ":memory:", "remote": ""})
        report = await svc.probe()
    assert kept["list"] == [], "the file read through the crypt was left in rclone's memory"
    assert report.ok, report


@pytest.mark.parametrize("mode", list(MODES))
async def test_an_empty_archive_passes_with_any_password(mode: str, webdav: LoopbackRemote, data_dir: Path) -> None:
    for password in (RIGHT, WRONG):
        async with SyncService(settings(webdav, data_dir, mode, obscure(password))) as svc:
            await svc.check_readable_archive()
    assert stored(webdav) == {}
    (webdav.storage / "vault").mkdir()  # the folder made, nothing in it yet
    for password in (RIGHT, WRONG):
        async with SyncService(settings(webdav, data_dir, mode, obscure(password))) as svc:
            await svc.check_readable_archive()
    assert list(stored(webdav)) == ["vault"]


@pytest.mark.parametrize("mode", LOOSE)
def test_the_probe_says_which_variables_to_fix(mode: str, webdav: LoopbackRemote, tmp_path: Path) -> None:
    """The operator's session: ``python -m sync probe`` with the wrong password ends in one sentence."""
    note = tmp_path / "note.txt"
    note.write_text("minutes of the meeting\n")
    data = {"HELIX_DATA_DIR": str(tmp_path / "data"), "HELIX_ARCHIVE": "vault:"}
    first = run("upload", str(note), "minutes/2024/note.txt", env={**data, **vault_env(webdav, mode, obscure(RIGHT))})
    assert first.returncode == 0, first.stderr

    wrong = obscure(WRONG)
    probe = run("probe", env={**data, **vault_env(webdav, mode, wrong)})
    assert probe.returncode == 1, probe.stdout + probe.stderr
    said = probe.stderr.strip().splitlines()[-1]
    for needle in ("'loop:vault'", "decrypt", "RCLONE_CONFIG_VAULT_PASSWORD", "RCLONE_CONFIG_VAULT_REMOTE"):
        assert needle in said, (needle, said)
    assert wrong not in probe.stdout + probe.stderr and WRONG not in probe.stdout + probe.stderr

    right = run("probe", env={**data, **vault_env(webdav, mode, obscure(RIGHT))})
    assert right.returncode == 0, right.stderr


async def test_an_upload_cut_short_is_not_taken_for_a_wrong_password(webdav: LoopbackRemote, data_dir: Path,
                                                                      tmp_path: Path) -> None:
    """A staged upload that a kill cut off mid-block fails crypt's check whatever the key: it is not read."""
    right = obscure(RIGHT)
    staged = "blobs/sha256/ab/" + "ab" * 31 + "cd.helix-partial-0123"  # beside the blob archive_like_helix leaves
    async with SyncService(settings(webdav, data_dir, "names-not-encrypted", right)) as svc:
        await archive_like_helix(svc, tmp_path)
        (tmp_path / "staged.bin").write_bytes(os.urandom(5000))
        await svc.archive(tmp_path / "staged.bin", staged)
    cut = webdav.storage / "vault" / f"{staged}.bin"  # names left unencrypted only gain crypt's suffix
    cut.write_bytes(cut.read_bytes()[:60])  # the smallest file in its folder now, and unreadable with any key
    async with SyncService(settings(webdav, data_dir, "names-not-encrypted", right)) as svc:
        await svc.check_readable_archive()


async def test_a_remote_that_is_down_is_not_called_a_wrong_password(webdav: LoopbackRemote, data_dir: Path,
                                                                     tmp_path: Path) -> None:
    async with SyncService(settings(webdav, data_dir, "obfuscated-names", obscure(RIGHT))) as svc:
        await archive_like_helix(svc, tmp_path)
    webdav.stop()
    async with SyncService(settings(webdav, data_dir, "obfuscated-names", obscure(WRONG))) as svc:
        with pytest.raises(sync.SyncError) as failed:
            await svc.check_readable_archive()
    assert not isinstance(failed.value, sync.ArchiveUnreadable), failed.value.hint

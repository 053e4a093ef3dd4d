"""Archive roots and relative paths: what HELIX_ARCHIVE accepts and what a path may look like."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync._paths import ArchiveRoot, clean_relative
from sync.errors import ConfigError, PathError
from sync.settings import SyncSettings


@pytest.mark.parametrize(("spec", "display", "name", "local"), [
    ("mega:helix", "mega:helix", "mega", False),
    ("s3:bucket/prefix", "s3:bucket/prefix", "s3", False),
    (":webdav,url='http://127.0.0.1:8080',pass=SECRET:dir", ":webdav:dir", None, False),
    ("/srv/archive", "/srv/archive", None, True),
])
def test_archive_roots(spec: str, display: str, name: str | None, local: bool):
    root = ArchiveRoot.parse(spec, Path("/unused"))
    assert (root.display, root.remote_name, root.is_local) == (display, name, local)
    assert "SECRET" not in root.display


@pytest.mark.parametrize(("spec", "folder"), [("/srv/archive", Path("/srv/archive")), (":local:/srv/archive", None),
                                              ("mega:helix", None)])
def test_only_a_plain_path_is_a_folder_here(spec: str, folder: Path | None):
    assert ArchiveRoot.parse(spec, Path("/unused")).folder == folder


@pytest.mark.parametrize("spec", [":", "::", ":x", ": /data"])
def test_a_colon_alone_is_neither_a_folder_nor_a_remote(spec: str, tmp_path: Path):
    with pytest.raises(PathError, match="is neither a folder nor a remote"):
        ArchiveRoot.parse(spec, tmp_path)
    assert not (Path.cwd() / spec).exists()


@pytest.mark.parametrize("spec", [":webdav,url='https://alice:Sup3rS3cret@host/dav',pass=Sup3rS3cret",
                                  ":webdav,url='https://alice:Sup3rS3cret@host/dav:helix",  # a quote left open
                                  ":WebDAV,pass=Sup3rS3cret:helix"])
def test_a_connection_string_rclone_cannot_split_is_refused_without_its_options(spec: str, tmp_path: Path):
    with pytest.raises(PathError, match="is neither a folder nor a remote") as refused:
        ArchiveRoot.parse(spec, tmp_path)
    assert "Sup3rS3cret" not in str(refused.value) and ",…'" in str(refused.value), refused.value


def test_empty_archive_means_the_local_folder(tmp_path: Path):
    root = ArchiveRoot.parse("", tmp_path / "archive")
    assert root.is_local and root.fs == str((tmp_path / "archive").resolve())


@pytest.mark.parametrize(("raw", "clean"), [("a/b.png", "a/b.png"), ("./a//b.png", "a/b.png"),
                                             ("$(touch x)", "$(touch x)"), ("a b/c", "a b/c")])
def test_clean_relative_accepts(raw: str, clean: str):
    assert clean_relative(raw) == clean


@pytest.mark.parametrize("raw", ["../x", "a/../../x", "-x", "a/-rf", "a\0b", "/etc/passwd", "C:/x", "a\\b",
                                 "a\x1bb", "", "   ", "x" * 2000, "./",
                                 "a/" + "é" * 130])
def test_clean_relative_refuses_with_a_sentence(raw: str):
    with pytest.raises(PathError) as err:
        clean_relative(raw)
    assert str(err.value)[0].isupper() and str(err.value).endswith(".")



@pytest.mark.parametrize(("var", "value"), [("HELIX_TRANSFERS", "0"), ("HELIX_RETRIES", "x"),
                                            ("HELIX_BWLIMIT", "fast"), ("HELIX_OP_TIMEOUT_S", "-1")])
def test_bad_settings_name_the_variable(var: str, value: str):
    with pytest.raises(ConfigError) as err:
        SyncSettings.from_env({var: value})
    assert var in str(err.value)


def test_a_port_number_in_an_error_is_not_an_http_status():
    """'dial tcp 127.0.0.1:53401: connection refused' is the network, not a rejected login."""
    from sync._rclone.classify import classify
    from sync.errors import AuthError, TemporaryError

    refused = classify('Propfind "http://127.0.0.1:53401/x": dial tcp 127.0.0.1:53401: connect: connection refused',
                       "loop:")
    assert isinstance(refused, TemporaryError)
    assert isinstance(classify("HTTP 401 Unauthorized", "loop:"), AuthError)


@pytest.mark.parametrize("text", ["preallocate: file too big for remaining disk space",
                                  "write /a/b.partial: no space left on device"])
def test_a_full_disk_under_a_local_archive_is_the_archive_being_full(text: str):
    """A QuotaError, like a full remote: every waiting item fails with it at once (none rewrites its bytes
    onto the full disk at every retry) until the operator frees space; members are told it is full."""
    from sync._rclone.classify import classify
    from sync.errors import QuotaError

    full = classify(f"copy failed: {text}", "/srv/archive")
    assert isinstance(full, QuotaError) and full.remote_wide and not full.retryable
    assert full.hint.startswith("The disk holding the archive folder '/srv/archive' is full"), full.hint
    assert "free space on it, or point HELIX_ARCHIVE at a folder on a disk with room" in full.hint
    remote = classify(f"copy failed: {text}", "sftp:archive")  # a remote's disk: the remote is full, or failing
    assert "The disk holding the archive folder" not in remote.hint

"""``python -m sync`` the way a new operator uses it: mistakes in the arguments, files Helix cannot
read, archive folders it cannot create or write. Each is one sentence naming the thing and the fix,
never a traceback, never a retry of what no retry fixes, never a Discord command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# This suite runs as root, whom file permissions do not stop: a user without the capabilities that
# override them is what a non-root operator is.
UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
DISCORD_COMMAND = re.compile(r"(?<![\w/])![a-z]+")


def run(*args: str, env: dict[str, str], unprivileged: bool = False, cwd: Path = ROOT,
        ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HELIX_", "RCLONE_CONFIG"))}
    argv = [*(UNPRIVILEGED if unprivileged else []), sys.executable, "-m", "sync", *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          env={**base, "PYTHONPATH": str(ROOT), **env}, timeout=120)


def assert_one_sentence(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    err = out.stderr
    assert "Traceback" not in err + out.stdout, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert not DISCORD_COMMAND.search(err), f"the command line suggests a Discord command: {err}"
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# -- item 8: the arguments -----------------------------------------------------------------------


def test_json_is_accepted_after_the_subcommand_too(tmp_path: Path) -> None:
    env = {"HELIX_DATA_DIR": str(tmp_path)}
    for args in (("--json", "about"), ("about", "--json")):
        out = run(*args, env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["backend"] == "local", args


def test_upload_of_a_folder_says_it_is_a_folder(tmp_path: Path) -> None:
    out = run("upload", str(tmp_path), "x/y", env={"HELIX_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode != 0
    assert_one_sentence(out, "is a folder")
    assert "does not exist" not in out.stderr


def test_ls_of_a_missing_prefix_is_an_error_and_of_an_empty_folder_is_not(tmp_path: Path) -> None:
    env = {"HELIX_DATA_DIR": str(tmp_path)}
    (tmp_path / "archive" / "empty").mkdir(parents=True)
    empty = run("ls", "empty", env=env)
    assert empty.returncode == 0 and empty.stdout == "", empty.stderr
    missing = run("ls", "nosuch", env=env)
    assert missing.returncode == 1
    assert_one_sentence(missing, "nosuch")


def test_an_empty_destination_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "note.txt"
    src.write_text("hello")
    out = run("upload", str(src), "", env={"HELIX_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 2
    assert_one_sentence(out, "DEST")
    assert not (tmp_path / "data" / "archive" / "uploads").exists()


def test_a_windows_path_in_helix_archive_is_refused_not_created_here(tmp_path: Path) -> None:
    out = run("about", env={"HELIX_DATA_DIR": str(tmp_path / "data"), "HELIX_ARCHIVE": "C:/x"}, cwd=tmp_path)
    assert out.returncode == 2
    assert_one_sentence(out, "HELIX_ARCHIVE")
    assert not (tmp_path / "C:").exists()


# -- item 1: a local archive folder that cannot be created ---------------------------------------


@pytest.mark.parametrize("case", ["under a file", "is a file", "read-only parent"])
def test_a_local_archive_folder_that_cannot_be_created_is_one_sentence(tmp_path: Path, case: str) -> None:
    blocker = tmp_path / "f.txt"
    blocker.write_text("a file")
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o555)
    archive = {"under a file": blocker / "sub", "is a file": blocker, "read-only parent": readonly / "archive"}[case]
    data = tmp_path / "data"
    data.mkdir(mode=0o777)
    for command in ("about", "probe"):
        out = run(command, env={"HELIX_DATA_DIR": str(data), "HELIX_ARCHIVE": str(archive)}, unprivileged=True)
        assert out.returncode == 2, (command, out.stderr)
        assert_one_sentence(out, "HELIX_ARCHIVE", str(archive))


# -- item 4: a local source problem is permanent and named -----------------------------------------


def test_an_unreadable_file_is_named_and_not_retried(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("mine")
    secret.chmod(0o000)
    data = tmp_path / "data"
    data.mkdir(mode=0o777)
    out = run("-v", "upload", str(secret), "x/secret.txt", env={"HELIX_DATA_DIR": str(data)}, unprivileged=True)
    assert out.returncode == 2  # a problem with what was asked, like a bad path
    err = out.stderr.splitlines()[-1]
    assert err == f"error: Cannot read {secret}: permission denied; make it readable by this user.", err
    assert "sync_retry" not in out.stderr, "a file nobody can read was retried"


def test_an_unwritable_local_archive_folder_is_named_and_not_retried(tmp_path: Path) -> None:
    src = tmp_path / "note.txt"
    src.write_text("hello")
    src.chmod(0o644)
    archive = tmp_path / "archive"
    archive.mkdir(mode=0o555)  # exists, but this user cannot write in it
    data = tmp_path / "data"
    data.mkdir(mode=0o777)
    out = run("-v", "upload", str(src), "x/note.txt", env={"HELIX_DATA_DIR": str(data), "HELIX_ARCHIVE": str(archive),
                                                         "HELIX_RETRIES": "3"}, unprivileged=True)
    assert out.returncode in (1, 2)
    assert "sync_retry" not in out.stderr, "an unwritable folder was retried"
    last = out.stderr.splitlines()[-1]
    assert str(archive) in last and "permission denied" in last and "HELIX_ARCHIVE" in last, last
    assert not DISCORD_COMMAND.search(out.stderr), out.stderr


# -- rclone's configuration: a mistake in it is named, not taken for a server that is down ---------


@pytest.mark.parametrize(("env", "needles"), [
    ({"RCLONE_CONFIG": "/tmp", "HELIX_ARCHIVE": "x:y"}, ("rclone could not read its configuration", "RCLONE_CONFIG")),
    ({"RCLONE_CONFIG_ZZ_TYPE": "nosuchtype", "HELIX_ARCHIVE": "zz:y"},
     ("type rclone does not know", "RCLONE_CONFIG_ZZ_TYPE")),
    ({"RCLONE_CONFIG_C_TYPE": "crypt", "RCLONE_CONFIG_C_REMOTE": "/tmp", "RCLONE_CONFIG_C_PASSWORD": "plain words",
      "HELIX_ARCHIVE": "c:y"}, ("is not obscured", "rclone obscure")),
    ({"RCLONE_CONFIG": "/nonexistent/rclone.conf", "HELIX_ARCHIVE": "foo:b"},
     ("RCLONE_CONFIG points to /nonexistent/rclone.conf, which does not exist", "RCLONE_CONFIG_FOO_TYPE")),
], ids=["config-is-a-folder", "unknown-type", "password-not-obscured", "config-file-missing"])
def test_a_mistake_in_rclones_configuration_is_named_with_its_fix(tmp_path: Path, env: dict[str, str],
                                                                   needles: tuple[str, ...]) -> None:
    out = run("-v", "about", env={"HELIX_DATA_DIR": str(tmp_path), **env})
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "unreachable" not in last and "server is up" not in last, last
    assert all(n in last for n in needles), last
    assert "goroutine" not in out.stderr and "plain words" not in out.stderr, out.stderr  # no Go stack, no secret


def test_a_remote_that_never_answers_is_not_called_slow(tmp_path: Path) -> None:
    """An S3 endpoint that refuses connections: rclone retries for minutes without a word, and Helix's
    time limit ends it. Nothing moved, so the sentence is about reaching the server, not its speed."""
    src = tmp_path / "note.txt"
    src.write_text("hello\n")
    env = {"HELIX_DATA_DIR": str(tmp_path / "data"), "HELIX_OP_TIMEOUT_S": "3", "HELIX_RETRIES": "0",
           "HELIX_ARCHIVE": "s:bucket", "RCLONE_CONFIG_S_TYPE": "s3", "RCLONE_CONFIG_S_PROVIDER": "Other",
           "RCLONE_CONFIG_S_ENDPOINT": "http://127.0.0.1:9", "RCLONE_CONFIG_S_ACCESS_KEY_ID": "x",
           "RCLONE_CONFIG_S_SECRET_ACCESS_KEY": "y"}
    out = run("upload", str(src), env=env)
    assert out.returncode != 0
    said = assert_one_sentence(out, "did not answer within 3 s", "server is up")
    assert "HELIX_OP_TIMEOUT_S" not in said, said

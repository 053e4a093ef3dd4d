"""An operator runs ``python -m sync`` by hand: on the embedded default, and on a WebDAV remote
defined only by RCLONE_CONFIG_* variables (as on Railway)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.remotes import LoopbackRemote

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_probe_on_the_embedded_local_default(tmp_path: Path):
    out = run("probe", env={"HELIX_DATA_DIR": str(tmp_path), "HELIX_ARCHIVE": ""})
    assert out.returncode == 0, out.stderr
    assert "ok: round trip" in out.stdout
    for step in ("write", "upload", "list", "read back", "compare", "delete"):
        assert step in out.stdout


def test_probe_upload_ls_about_on_webdav_defined_by_env(webdav: LoopbackRemote, tmp_path: Path):
    env = {"HELIX_DATA_DIR": str(tmp_path), "HELIX_ARCHIVE": "loop:helix", **webdav.env()}
    probe = run("--json", "probe", env=env)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["ok"] is True

    src = tmp_path / "note.txt"
    src.write_text("hello helix")
    up = run("--json", "upload", str(src), "notes/note.txt", env=env)
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["remote_path"] == "loop:helix/notes/note.txt"
    assert (webdav.root / "helix/notes/note.txt").read_text() == "hello helix"

    ls = run("ls", "notes", env=env)
    assert "notes/note.txt" in ls.stdout

    about = run("about", env=env)
    assert "backend: webdav" in about.stdout
    assert webdav.password not in about.stdout + about.stderr
    assert webdav.env()["RCLONE_CONFIG_LOOP_PASS"] not in about.stdout + about.stderr


def test_failures_are_one_sentence_on_stderr(webdav: LoopbackRemote, tmp_path: Path):
    webdav.stop()
    env = {"HELIX_DATA_DIR": str(tmp_path), "HELIX_ARCHIVE": "loop:", "HELIX_RETRIES": "0",
           "HELIX_LOW_LEVEL_RETRIES": "1", **webdav.env()}
    out = run("upload", str(ROOT / "pyproject.toml"), env=env)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "unreachable" in out.stderr and "Traceback" not in out.stderr

    bad = run("upload", str(ROOT / "pyproject.toml"), "../escape", env={"HELIX_DATA_DIR": str(tmp_path)})
    assert bad.returncode == 2 and "'..'" in bad.stderr

    cfg = run("about", env={"HELIX_DATA_DIR": str(tmp_path), "HELIX_TRANSFERS": "lots"})
    assert cfg.returncode == 2 and "HELIX_TRANSFERS" in cfg.stderr


def test_upload_to_a_path_ending_in_a_slash_keeps_the_files_name_in_that_folder(tmp_path: Path):
    env = {"HELIX_DATA_DIR": str(tmp_path)}
    src = tmp_path / "minutes.txt"
    src.write_text("minutes\n")
    out = run("upload", str(src), "notes/", env=env)
    assert out.returncode == 0, out.stderr
    archive = tmp_path / "archive"
    assert (archive / "notes" / "minutes.txt").read_text() == "minutes\n"
    assert run("upload", str(src), env=env).returncode == 0
    assert (archive / "uploads" / "minutes.txt").is_file()

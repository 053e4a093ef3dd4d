"""``python -m capture restore`` when things are not as they should be: it says what, in one sentence."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.capture.test_restore import REPO, landed_archive, restore
from tests.support.archived import PHOTO
from tests.support.browser import images_seen
from tests.support.cdn import LocalCdn


async def test_missing_and_tampered_files_do_not_stop_a_restore(data_dir: Path, tmp_path: Path,
                                                                cdn: LocalCdn):  # noqa: F811
    target = await landed_archive(data_dir, cdn)
    archive = data_dir / "archive"
    sha = hashlib.sha256(PHOTO).hexdigest()
    (archive / f"blobs/sha256/{sha[:2]}/{sha}").unlink()  # the photo is gone from the remote
    [segment] = (archive / f"discord/{target}/messages").glob("*.jsonl")
    lines = [json.loads(line) for line in segment.read_text().splitlines()]
    for line in lines:  # and someone pointed the minutes at a file outside the archive
        for att in line.get("attachments") or []:
            if att["filename"] == "minutes.txt":
                att["blob"] = "../../../outside.txt"
    segment.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "outside.txt").write_text("not yours")

    dest = tmp_path / "restored"
    code, out, err = await asyncio.to_thread(restore, data_dir, target, dest)
    assert code == 1, (out, err)
    assert err == ("error: skipped 1 file whose path in a segment is not a blob path (../../../outside.txt): the "
                   "segment was changed outside Helix; the pages leave it unlinked.\n"
                   f"error: 1 file is missing on the archive remote (blobs/sha256/{sha[:2]}/{sha}): the rest is "
                   "restored, and the pages show a broken link where it was.\n"), err
    assert "open " in out and (dest / "index.html").is_file()
    assert not list(dest.rglob("outside.txt")) and not list(dest.glob("blobs/sha256/*/*"))
    [page] = dest.glob(f"discord/{target}/restored/*.html")
    assert "outside" not in page.read_text() and "photo of the launch pad" in page.read_text()
    images = await asyncio.to_thread(images_seen, page)
    assert [i["ok"] for i in images] == [False], images  # the one picture whose bytes are gone

    # DEST mistakes: one sentence each, exit code 2, nothing overwritten
    env = {**os.environ, "HELIX_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    empty = subprocess.run([sys.executable, "-m", "capture", "restore", target, ""], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert (empty.returncode, empty.stderr) == (
        2, "error: DEST is empty: give the folder to restore into, for example ./restored.\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>my own site</h1>")
    code, _, err = await asyncio.to_thread(restore, data_dir, target, site)
    assert code == 2 and err == (f"error: {site} already has an index.html that Helix did not write: choose "
                                 "another folder, or move that file away first.\n"), err
    assert (site / "index.html").read_text() == "<h1>my own site</h1>" and not (site / "discord").exists()
    unwritable = tmp_path / ("x" * 300)
    code, _, err = await asyncio.to_thread(restore, data_dir, target, unwritable)
    assert code == 2 and err == (f"error: cannot write DEST {unwritable} (File name too long): choose a writable "
                                 "folder.\n"), err
    # a folder a restore wrote is Helix's: restoring into it again is fine
    code, _, err = await asyncio.to_thread(restore, data_dir, target, dest)
    assert code == 1 and "Traceback" not in err, err


def bulk_archive(root: Path, files: int) -> str:
    """A channel with one message of many small files, written in the archive format by hand."""
    guild, channel = "1456074443980800002", "1456074443980800099"
    base = root / f"discord/{guild}/{channel}"
    attachments = []
    for i in range(files):
        data = f"file {i}\n".encode()
        sha = hashlib.sha256(data).hexdigest()
        blob = f"blobs/sha256/{sha[:2]}/{sha}"
        (root / blob).parent.mkdir(parents=True, exist_ok=True)
        (root / blob).write_bytes(data)
        attachments.append({"id": str(1000 + i), "filename": f"f{i}.txt", "size": len(data),
                            "content_type": "text/plain", "sha256": sha, "blob": blob, "status": "saved"})
    line = {"type": "message", "id": "1456074443980800100", "channel_id": channel, "guild_id": guild,
            "revision": 0, "author": {"id": "7", "name": "alice", "bot": False},
            "created_at": "2026-01-01T00:00:00.000000Z", "edited_at": None, "content": "many files",
            "reply_to": None, "embeds": [], "stickers": [], "reactions": [], "attachments": attachments}
    segment = f"discord/{guild}/{channel}/messages/1456074443980800100-1456074443980800100.jsonl"
    (root / segment).parent.mkdir(parents=True)
    (root / segment).write_text(json.dumps(line) + "\n")
    (base / "channel.json").write_text(json.dumps({
        "format": 1, "guild_id": guild, "cursor": line["id"], "watched": False,
        "channel": {"id": channel, "name": "bulk", "topic": None, "type": "text", "parent_id": None},
        "segments": [{"path": segment, "transcript": None, "first_id": line["id"], "last_id": line["id"]}]}))
    return f"{guild}/{channel}"


def test_ctrl_c_says_how_far_the_restore_got(data_dir: Path, tmp_path: Path):
    target = bulk_archive(data_dir / "archive", 600)
    dest = tmp_path / "restored"
    env = {**os.environ, "HELIX_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    env.pop("HELIX_ARCHIVE", None)
    proc = subprocess.Popen([sys.executable, "-m", "capture", "restore", target, str(dest)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "blobs/" in line:  # some files are in, most are not
            proc.send_signal(signal.SIGINT)
            break
    proc.stdout.read()
    assert proc.wait(timeout=60) == 130
    err = proc.stderr.read() if proc.stderr else ""
    said = re.fullmatch(r"restore interrupted: (\d+) of (\d+) files in (.+); run the same command again to finish\n",
                        err)
    assert said and said.group(3) == str(dest) and 0 < int(said.group(1)) < int(said.group(2)) == 602, err

    code, out, err = restore(data_dir, target, dest)
    assert code == 0, err
    assert len(list(dest.glob("files/*/f*.txt"))) == 600 and (dest / "index.html").is_file()

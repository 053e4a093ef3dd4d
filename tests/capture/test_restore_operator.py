"""An operator's session with ``python -m capture restore``: where it may write, what it refuses
before writing anything (a crypt archive read with the wrong password among it), and a restored
folder they can walk through page by page, offline."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bot.sim.world import simulated_guild
from capture import CaptureSettings
from sync import SyncSettings
from sync._rclone.binary import find_rclone
from tests.capture.test_restore import REPO, landed_archive
from tests.capture.test_restore_robustness import bulk_archive
from tests.support.archived import archived_server
from tests.support.browser import run_chromium
from tests.support.cdn import LocalCdn
from tests.support.remotes import obscure
from tests.support.world import bot_settings

# After load, write each link of the page into the DOM, as the browser resolved it.
_LINK_PROBE = """<script>
window.addEventListener('load', () => {
  const seen = [...document.querySelectorAll('a')].map(a => ({text: a.textContent, href: a.href,
    nav: !!a.closest('nav'), rel: a.rel, item: a.closest('li') ? a.closest('li').textContent : ''}));
  document.body.setAttribute('data-links', JSON.stringify(seen));
});</script></body>"""


def cli(data_dir: Path, *args: str, cwd: Path, home: Path | None = None,
        extra: dict[str, str] | None = None) -> tuple[int, str, str]:
    """A command typed by the operator, as a real process (its own rclone), with no .env around;
    ``extra``: the operator's own settings (an archive remote)."""
    env = {**os.environ, "HELIX_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    env.pop("HELIX_ARCHIVE", None)
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra or {})
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def links_seen(page: Path) -> list[dict[str, Any]]:
    """Open ``page`` in Chromium (a copy with a probe beside it) and return its links as resolved."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", _LINK_PROBE))
    try:
        out = run_chromium("--virtual-time-budget=3000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    found = re.search(r'data-links="([^"]*)"', out.stdout)
    assert found, f"no probe result in the DOM: {out.stderr[-800:]}"
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    for link in seen:  # the probe ran in probe.html, beside the page: the same folder, the same targets
        link["path"] = Path(unquote(urlparse(link["href"]).path)) if link["href"].startswith("file:") else None
    return seen


def top_level(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_a_restore_writes_only_into_a_new_empty_or_its_own_folder(data_dir: Path, tmp_path: Path,
                                                                        cdn: LocalCdn):  # noqa: F811
    target = await landed_archive(data_dir, cdn)
    guild = target.split("/")[0]
    restore = ("-m", "capture", "restore", target)

    # a folder with the operator's own things in it: refused, nothing added
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    code, _, err = await asyncio.to_thread(cli, data_dir, *restore, str(notes), cwd=tmp_path)
    assert (code, err) == (2, f"error: DEST {notes} is not empty and is not an earlier restore of {target} (it "
                              "holds notes.txt): give a new or empty folder (a new one is created), or move what "
                              "is in it away first.\n"), err
    assert top_level(notes) == ["notes.txt"]

    # the home folder: refused outright, even written as ~
    home = tmp_path / "home"
    home.mkdir()
    code, _, err = await asyncio.to_thread(cli, data_dir, *restore, "~", cwd=tmp_path, home=home)
    assert (code, err) == (2, f"error: DEST {home} is your home folder, where a restore would spread its "
                              f"index.html, blobs/, discord/ and files/: give a new folder instead, for example "
                              f"{home}/restored.\n"), err
    assert top_level(home) == []

    # the filesystem's root (after the cases above: it is not empty either, so both checks guard it)
    code, _, err = await asyncio.to_thread(cli, data_dir, *restore, "/", cwd=tmp_path)
    assert (code, err) == (2, "error: DEST / is the root of the filesystem, where a restore would spread its "
                              "index.html, blobs/, discord/ and files/: give a new folder instead, for example "
                              "./restored.\n"), err
    assert not any(Path("/", name).exists() for name in ("index.html", "blobs", "discord", "files"))

    # an empty folder is fine, and so is the same command again over what it wrote
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = await asyncio.to_thread(cli, data_dir, *restore, str(empty), cwd=tmp_path)
    assert code == 0, err
    assert top_level(empty) == ["blobs", "discord", "files", "index.html"]
    code, _, err = await asyncio.to_thread(cli, data_dir, *restore, str(empty), cwd=tmp_path)
    assert code == 0, err

    # a restore of another channel is not one to resume: the two would share one index.html
    other = next(p.name for p in (data_dir / "archive/discord" / guild).iterdir() if p.name != target.split("/")[1])
    code, _, err = await asyncio.to_thread(cli, data_dir, "-m", "capture", "restore", f"{guild}/{other}",
                                           str(empty), cwd=tmp_path)
    assert code == 2 and err.startswith(f"error: DEST {empty} is not empty and is not an earlier restore of "
                                        f"{guild}/{other} (it holds discord/{target}):"), err


async def test_a_channel_the_archive_does_not_hold_creates_nothing(data_dir: Path, tmp_path: Path,
                                                                   cdn: LocalCdn):  # noqa: F811
    target = await landed_archive(data_dir, cdn)
    guild, channel = target.split("/")
    dest = tmp_path / "typo"
    code, _, err = await asyncio.to_thread(cli, data_dir, "-m", "capture", "restore", f"{guild}/42", str(dest),
                                           cwd=tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert not dest.exists()
    assert err.count("error: ") == 1 and err.endswith(".\n") and err.count("\n") == 1, err
    assert f"discord/{guild}/42/" in err and f"guild {guild}, channel 42" in err, err
    assert f"`python -m sync ls discord/{guild}/`" in err, err
    # what the sentence says to run does list the channel that is archived
    code, out, _ = await asyncio.to_thread(cli, data_dir, "-m", "sync", "ls", f"discord/{guild}/", cwd=tmp_path)
    assert code == 0 and f"discord/{guild}/{channel}" in out, out

    code, _, err = await asyncio.to_thread(cli, data_dir, "-m", "capture", "restore", "1/2", str(dest), cwd=tmp_path)
    assert code == 2 and "guild 1, channel 2" in err and "`python -m sync ls discord/`" in err, err
    assert not dest.exists()


def test_a_restore_with_the_wrong_crypt_password_names_the_password_not_a_missing_archive(tmp_path: Path):
    """The archive is an rclone crypt (README: "Encryption at rest") and the operator restores on a machine
    where RCLONE_CONFIG_SEALED_PASSWORD is mistyped: rclone lists nothing it cannot decrypt, and "Nothing
    is archived" would send them looking for an archive that is there."""
    target = bulk_archive(tmp_path / "plain", 2)
    crypt = {"RCLONE_CONFIG_SEALED_TYPE": "crypt", "RCLONE_CONFIG_SEALED_REMOTE": str(tmp_path / "base")}
    subprocess.run([find_rclone(), "copy", str(tmp_path / "plain"), "sealed:"], check=True, capture_output=True,
                   env={**os.environ, **crypt, "RCLONE_CONFIG_SEALED_PASSWORD": obscure("right")})
    dest = tmp_path / "restored"
    code, _, err = cli(tmp_path / "data", "-m", "capture", "restore", target, str(dest), cwd=tmp_path,
                       extra={"HELIX_ARCHIVE": "sealed:", **crypt, "RCLONE_CONFIG_SEALED_PASSWORD": obscure("wrong")})
    assert code == 2 and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("error: The archive remote 'sealed' shows nothing"), err
    assert "RCLONE_CONFIG_SEALED_PASSWORD" in err and "Nothing is archived" not in err, err
    assert not dest.exists()


async def segmented_archive(data_dir: Path, cdn: LocalCdn) -> str:
    """The server of ``landed_archive`` with more messages, in segments of two lines: a channel whose
    restore has several pages, all from the same few days, the last ones from the same instant."""
    sync = SyncSettings(data_dir=data_dir, retries=1, retry_base_s=0.05)
    async with simulated_guild(bot_settings(sync, capture=CaptureSettings(segment_records=2))) as world:
        a = await archived_server(world, cdn, extra=4)
        assert await world.archive.worker.drain(30)
        return f"{world.guild.id}/{a.general.id}"


async def restored_pages(data_dir: Path, tmp_path: Path, cdn: LocalCdn) -> tuple[Path, list[Path]]:
    """The segmented channel restored by the operator's command: its folder and its pages, in order."""
    target = await segmented_archive(data_dir, cdn)
    dest = tmp_path / "restored"
    code, _, err = await asyncio.to_thread(cli, data_dir, "-m", "capture", "restore", target, str(dest), cwd=tmp_path)
    assert code == 0, err
    pages = sorted(dest.glob(f"discord/{target}/restored/*.html"), key=lambda p: int(p.stem.split("-")[0]))
    assert len(pages) == 4, pages
    return dest, pages


async def test_the_index_tells_each_page_apart(data_dir: Path, tmp_path: Path, cdn: LocalCdn):  # noqa: F811
    dest, pages = await restored_pages(data_dir, tmp_path, cdn)
    entries = await asyncio.to_thread(links_seen, dest / "index.html")
    assert [e["path"] for e in entries] == pages, entries  # one entry per page, in order
    items = [" ".join(e["item"].split()) for e in entries]
    assert len(set(items)) == len(items), items  # the last two pages hold messages of the same instant
    for number, item in enumerate(items, 1):
        first = 2 * number - 1
        assert re.fullmatch(rf"Page {number} · \d{{4}}-\d\d-\d\d \d\d:\d\d( – [\d :-]+)? UTC · 2 messages "
                            rf"\({first}–{first + 1} of 8\)", item), items


async def test_a_restored_page_leads_to_the_next_and_back_to_the_index(data_dir: Path, tmp_path: Path,
                                                                       cdn: LocalCdn):  # noqa: F811
    dest, pages = await restored_pages(data_dir, tmp_path, cdn)
    walked: list[Path] = []
    page: Path | None = pages[0]
    while page is not None:  # Next page from the first leads through every page in order
        walked.append(page)
        nav = [link for link in await asyncio.to_thread(links_seen, page) if link["nav"]]
        by_text: dict[str, Path] = {}
        for link in nav:  # the same links above and below the messages
            assert by_text.setdefault(link["text"], link["path"]) == link["path"], nav
        assert by_text.get("All pages") == dest / "index.html", nav
        assert all(link["path"] is not None and link["path"].is_file() for link in nav), nav
        assert by_text.get("← Previous page") == (walked[-2] if len(walked) > 1 else None), nav
        assert len(walked) <= len(pages), walked
        page = by_text.get("Next page →")
    assert walked == pages

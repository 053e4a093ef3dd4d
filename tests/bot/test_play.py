"""``python -m bot play`` under a pipe, as a person at a terminal would use it: what it says before the
first prompt, playing an admin, pressing a button, a lone ``/``, and Ctrl-C (SIGINT to its process
group, as a terminal sends it) ending it at once, cleanly, with rclone stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.test_demo import REPO, newcomer_env
from tests.support.capture import backup_finished

PROMPT_WITHIN_S = 60.0


class Play:
    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "play"], cwd=REPO, env=newcomer_env(data_dir),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1, start_new_session=True)
        self.out = ""
        self.err = ""
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, args=("out",), daemon=True).start()
        threading.Thread(target=self._pump, args=("err",), daemon=True).start()

    def _pump(self, which: str) -> None:
        stream = self.proc.stdout if which == "out" else self.proc.stderr
        assert stream is not None
        while chunk := stream.read(1):
            with self._lock:
                setattr(self, which, getattr(self, which) + chunk)

    def wait_for(self, text: str, after: int = 0, within: float = PROMPT_WITHIN_S) -> str:
        deadline = time.perf_counter() + within
        while time.perf_counter() < deadline:
            with self._lock:
                if text in self.out[after:]:
                    return self.out[after:]
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)  # polling another process's output: there is no event to wait on
        raise AssertionError(f"{text!r} not printed within {within} s:\n{self.out[after:]}\n{self.err}")

    def wait_for_answer(self, line: str, text: str, prompt: str, within: float = PROMPT_WITHIN_S) -> str:
        """Type ``line`` again until its answer holds ``text``: work the bot does in the background
        (a backup) has no prompt to wait for."""
        deadline = time.perf_counter() + within
        while True:
            said = self.type(line, prompt)
            if text in said or time.perf_counter() > deadline:
                assert text in said, said
                return said
            time.sleep(0.2)

    def type(self, line: str, prompt: str) -> str:
        mark = len(self.out)
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.wait_for(prompt, after=mark)


@pytest.fixture
def play(tmp_path: Path) -> Iterator[Play]:
    game = Play(tmp_path / "data")
    try:
        yield game
    finally:
        if game.proc.poll() is None:
            os.killpg(game.proc.pid, signal.SIGKILL)
            game.proc.wait()


def rclone_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if "rclone" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_ctrl_c_leaves_at_once_cleanly_with_rclone_stopped(play: Play) -> None:
    play.wait_for("alice › ")
    [rclone] = rclone_children(play.proc.pid)
    os.killpg(play.proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    try:
        code = play.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"play did not leave on Ctrl-C:\n{play.out[-500:]}") from None
    assert code in (0, 130), (code, play.err)
    assert "Traceback" not in play.out + play.err, play.err
    assert not running(rclone), "rclone outlived play"


def test_play_says_what_it_does_lets_you_be_an_admin_and_press_buttons(play: Play) -> None:
    before_prompt = play.wait_for("alice › ")
    head = before_prompt.split("alice › ")[0]
    assert head.splitlines()[0].startswith("Starting"), head
    assert "!help" in head, "the help line does not mention !help"

    lone = play.type("/", "alice › ")
    assert "not enough values" not in lone and "/ritual steps:7" in lone, lone

    play.type("as carol admin", "carol › ")
    tested = play.type("!testmega", "carol › ")
    assert "Archive round trip ok" in tested, tested

    play.type("as owner", "owner › ")
    play.type("!ritual 3", "owner › ")
    asked = play.type("!outbox drop 1", "owner › ")
    assert "Drop #1" in asked and "[buttons: Drop it · Keep it]" in asked, asked  # what `click` takes
    kept = play.type("click Keep it", "owner › ")
    assert "Kept #1." in kept, kept
    nothing = play.type("click Nope", "owner › ")
    assert "Nope" in nothing and "Traceback" not in nothing, nothing


def test_play_has_channels_to_back_up_search_and_get_back(play: Play) -> None:
    head = play.wait_for("alice › ")
    assert "!backup launch" in head and "#staff-room" in head, head

    play.type("as owner", "owner › ")
    started = play.type("!backup launch", "owner › ")
    assert "Backing up #launch" in started, started
    started = play.type("!backup staff-room", "owner › ")  # typed where not everyone reads #staff-room
    assert "Backing up a channel not everyone here can read" in started and "staff-room" not in started, started
    play.type("as alice", "alice › ")
    found = play.wait_for_answer("!find launch", "The rocket **launch** is on Friday", "alice › ")
    archived_id = found.split("archived id `")[1].split("`")[0]
    got = play.type(f"!get {archived_id}", "alice › ")
    assert "The rocket launch is on Friday" in got, got
    listed = play.type("!archives #launch", "alice › ")  # typed as a name, sent as a mention, as Discord does
    assert "#launch · 2 messages" in listed, listed
    play.type("as bob", "bob › ")
    hidden = play.type("!find code", "bob › ")
    assert "Nothing archived that you can read matches" in hidden and "4242" not in hidden, hidden
    # to post where the community posts: the prompt says where bob is now
    unknown = play.type("in nosuch", "bob › ")
    assert "no channel #nosuch" in unknown and "#launch" in unknown, unknown
    play.type("in #launch", "bob in #launch › ")


def test_an_archive_folder_under_a_file_is_one_sentence_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    env = {**newcomer_env(tmp_path / "data"), "HELIX_ARCHIVE": str(tmp_path / "afile" / "sub")}
    done = subprocess.run([sys.executable, "-m", "bot", "play"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=PROMPT_WITHIN_S)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    [said] = done.stderr.splitlines()
    assert "is a file, not a folder" in said and "set HELIX_ARCHIVE" in said, said


async def test_a_slash_subcommand_with_a_channel_can_be_typed_as_discords_client_picks_them(local_world) -> None:
    world = local_world
    launch = world.guild.create_text_channel("launch")
    started = await world.say(world.owner, "/backup channel channel:#launch")
    assert any(f"<#{launch.id}>" in line for line in started), started
    assert (await backup_finished(world, launch.id)).state == "done"
    status = await world.say(world.owner, "/backup status")
    assert any(f"<#{launch.id}> · done" in line for line in status), status
    with pytest.raises(ValueError, match="no channel #nosuch here"):
        await world.say(world.owner, "/backup channel channel:#nosuch")

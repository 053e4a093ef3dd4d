"""``python -m bot demo``, run the way the README tells a newcomer to: no token, no cloud account."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from bot.sim.demo import SCRIPT

REPO = Path(__file__).resolve().parents[2]


def newcomer_env(data_dir: Path) -> dict[str, str]:
    """This machine's environment without any Helix, rclone remote or Discord settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HELIX_", "RCLONE_", "DISCORD_", "LOG_", "PYTEST"))}
    return {**env, "HELIX_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}


def test_the_demo_runs_every_command_and_verifies_the_archive(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    done = subprocess.run([sys.executable, "-m", "bot", "demo"], cwd=REPO, env=newcomer_env(data_dir),
                          capture_output=True, text=True, timeout=120)

    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr}"
    for who, text, _ in SCRIPT:
        typed = r"\d+".join(re.escape(part) for part in re.split(r"\{[\w-]+\}", f"{who} › {text}"))
        assert re.search(f"^{typed}$", out, re.MULTILINE), f"{text} is not in the transcript:\n{out}"
    assert {text.split()[0] for _, text, _ in SCRIPT} >= {
        "!sync", "!status", "!heartbeat", "!testmega", "!ritual", "/ritual", "!backup", "!find", "/find",
        "/archives", "!get"}
    assert "(no answer)" not in out and "Traceback" not in out + done.stderr
    checks = re.findall(r"^  ok  (\S+\.png)  sha256 [0-9a-f]{16}…  steps=(\d+)$", out, re.MULTILINE)
    assert sorted(int(steps) for _, steps in checks) == [7, 108], out
    assert re.search(rf"^demo ok: {len(SCRIPT)} commands answered", out, re.MULTILINE), out

    # what the staff room holds reaches carol, who is staff, and never bob
    answers = dict(re.findall(r"^(\w+ › [^\n]+)\n((?:  [^\n]*\n)+)", out, re.MULTILINE))
    assert "4242, keep it secret" in answers["carol › /find query:code"]
    assert "4242" not in answers["carol › !find code"]  # typed where bob reads too
    assert "keep it secret" not in "".join(a for typed, a in answers.items() if typed.startswith("bob"))
    assert "#staff-room" not in answers["bob › /archives"] and "#launch · 2 messages" in answers["bob › /archives"]
    assert [typed for typed in answers if typed.startswith("bob › /get")], "bob asks for the staff room's message"
    assert not re.search(r"<(#|@|t:)\d", out), "the transcript shows mentions as a client does"
    assert "Backing up #launch: 2 messages scanned" in out and " 0 msg/s" not in out, "no rate before there is one"
    segments = list(data_dir.glob("demo/archive/discord/*/*/messages/*.jsonl"))
    assert len(segments) == 2, segments
    for remote_png, _ in checks:
        assert Path(remote_png).is_file() and Path(remote_png).is_relative_to(data_dir), remote_png


def test_ctrl_c_stops_the_demo_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bot", "demo"], cwd=REPO, env=newcomer_env(tmp_path / "data"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()  # the transcript has begun: the demo is under way
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert first and "Traceback" not in out + err, err
    assert proc.returncode == 130 and err.strip().endswith("run it again to see it all."), (proc.returncode, err)

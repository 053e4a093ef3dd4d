"""An operator starts ``python -m bot``: configuration mistakes end it with one sentence and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.__main__ import _run
from bot.settings import Settings
from sync.settings import SyncSettings
from tests.support.loopback import LoopbackDiscord

ROOT = Path(__file__).resolve().parents[2]


def run_bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN" and not k.startswith("HELIX_")}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_missing_token_is_one_sentence_and_exit_2(tmp_path: Path):
    out = run_bot({"HELIX_DATA_DIR": str(tmp_path)}, "run")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "DISCORD_TOKEN is not set" in out.stderr and "python -m bot demo" in out.stderr


def test_a_bad_setting_names_the_variable(tmp_path: Path):
    out = run_bot({"HELIX_DATA_DIR": str(tmp_path), "DISCORD_TOKEN": "x", "HELIX_RITUAL_MAX_STEPS": "lots"})
    assert out.returncode == 2
    assert "HELIX_RITUAL_MAX_STEPS" in out.stderr and "Traceback" not in out.stderr


async def test_a_rejected_token_is_one_sentence_and_exit_2(tmp_path: Path, capsys):
    settings = Settings(discord_token="wrong-token", health=False, heartbeat_minutes=0,
                        sync=SyncSettings(data_dir=tmp_path))
    async with LoopbackDiscord(valid_token="the-right-token") as fake:
        with fake.pointed():
            code = await _run(settings)
    assert code == 2
    err = capsys.readouterr().err
    assert "Discord rejected DISCORD_TOKEN" in err and "wrong-token" not in err


def test_check_reports_a_missing_package_in_one_line_instead_of_crashing(tmp_path: Path):
    """`python -m bot check` imports nothing third-party before the preflight runs: a broken install
    is reported by the preflight, not by a traceback from bot/__main__.py."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "discord.py").write_text("raise ImportError('simulated: discord.py is not installed')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker), "HELIX_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "bot", "check", "--build"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stdout + out.stderr
    assert "discord" in out.stdout + out.stderr


def test_every_bad_setting_is_named_at_once(tmp_path: Path):
    out = run_bot({"HELIX_DATA_DIR": str(tmp_path), "DISCORD_TOKEN": "x", "HELIX_RITUAL_MAX_STEPS": "lots",
                   "HELIX_TRANSFERS": "0", "HELIX_ADMIN_ROLE_IDS": "admins"})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines), out.stderr
    for var in ("HELIX_RITUAL_MAX_STEPS", "HELIX_TRANSFERS", "HELIX_ADMIN_ROLE_IDS"):
        assert sum(var in line for line in lines) == 1

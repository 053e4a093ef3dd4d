"""An operator's ``.env`` that Helix cannot read: saved as Latin-1 by an editor, or owned by another user.

Every command line reads ``.env`` first (runtime/env.py ``environment()``); each must end in one sentence
naming the file and the fix, with exit code 2 as for any bad setting, not in python-dotenv's traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sync.test_cli_mistakes import ROOT, UNPRIVILEGED

LATIN1 = b"# archive of the caf\xe9 server\nHELIX_PREFIX=?\n"


def operator(*cmd: str, cwd: Path, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m <cmd>`` typed in ``cwd``, the folder holding the operator's .env."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HELIX_", "RCLONE_CONFIG", "DISCORD_", "LOG_"))}
    env = {**base, "PYTHONPATH": str(ROOT), "HELIX_DATA_DIR": str(cwd / "data")}
    argv = [*(UNPRIVILEGED if unprivileged else []), sys.executable, "-m", *cmd]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def said(out: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-800:]
    [sentence] = [line for line in out.stderr.splitlines() if line.startswith(("error: ", "problem: "))]
    return sentence


@pytest.mark.parametrize("cmd", [("sync", "about"), ("bot", "check"), ("bot", "run"),
                                 ("capture", "restore", "1/2", "out")],
                         ids=["sync-about", "bot-check", "bot-run", "capture-restore"])
def test_a_dotenv_saved_as_latin1_is_named_by_every_command(tmp_path: Path, cmd: tuple[str, ...]) -> None:
    (tmp_path / ".env").write_bytes(LATIN1)
    out = operator(*cmd, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    sentence = said(out)
    assert f"{tmp_path / '.env'} is not UTF-8 text" in sentence and "save it again as UTF-8" in sentence, sentence
    assert not (tmp_path / "out").exists()


def test_a_dotenv_this_user_cannot_read_is_named_with_the_fix(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("HELIX_PREFIX=?\n")
    dotenv.chmod(0)
    out = operator("sync", "about", cwd=tmp_path, unprivileged=True)
    assert out.returncode == 2, out.stderr
    sentence = said(out)
    assert f"{dotenv} cannot be read (Permission denied): make it readable" in sentence, sentence

"""``python -m bot check`` with a token that has three dot-separated parts but is still no bot token:
the sentence must say what is actually wrong with it and where to copy the right one from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.deploy import test_preflight as healthy


def test_a_dotted_token_that_is_no_bot_token_is_told_what_a_bot_token_looks_like(tmp_path: Path) -> None:
    env = {**healthy.env.__wrapped__(tmp_path), "DISCORD_TOKEN": "abc.def.ghi"}
    # cwd is a temporary folder: no developer's .env can fill in what the test left unset.
    done = subprocess.run([sys.executable, "-m", "bot", "check"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0, done.stdout
    [text] = [line for line in done.stderr.splitlines() if "DISCORD_TOKEN" in line]
    assert "three parts separated by dots" not in text, text  # abc.def.ghi has three such parts
    assert "at least 20 characters" in text and "developer portal" in text and "Bot page" in text, text
    assert "Traceback" not in done.stdout + done.stderr

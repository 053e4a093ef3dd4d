"""The README is the contract with a newcomer: its commands are the ones CI runs, and lint holds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from preflight.packages import FIRST_PARTY

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, re.S)


def test_readme_has_exactly_two_setup_commands():
    demo, tests = _readme_commands()
    assert demo.endswith("python -m bot demo") and "requirements" in demo
    assert tests.endswith("python -m pytest") and "requirements-dev.txt" in tests


def test_ci_runs_exactly_the_readme_test_command():
    _, tests = _readme_commands()
    run = (ROOT / ".ci" / "run").read_text()
    assert tests in run.splitlines(), "the README's test command and .ci/run have drifted apart"


def test_every_environment_variable_the_code_reads_is_documented():
    readme = (ROOT / "README.md").read_text()
    used: set[str] = set()
    for folder in FIRST_PARTY:
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r'"((?:HELIX|LOG|RCLONE)_[A-Z_]+|DISCORD_TOKEN|PORT)"', path.read_text()))
    internal = {"RCLONE_RC_USER", "RCLONE_RC_PASS", "RCLONE_ASK_PASSWORD", "RCLONE_CONFIG_"}
    missing = sorted(v for v in used - internal if f"`{v}`" not in readme and not v.startswith("RCLONE_CONFIG_"))
    assert not missing, f"undocumented variables: {missing}"


def test_ruff_is_clean():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]

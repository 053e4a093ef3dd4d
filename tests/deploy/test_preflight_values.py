"""The preflight, fed the values a new operator gets wrong: each is one ``problem:`` line naming
the variable and the fix, instead of a pass followed by a failure (or a traceback) at the start."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy import test_preflight as healthy
from tests.deploy.test_preflight import ROOT, Run, run

UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The healthy environment of tests/deploy/test_preflight.py, which each test breaks in one way."""
    return healthy.env.__wrapped__(tmp_path)


def one_problem(result: Run, *needles: str) -> str:
    assert result.code != 0, result.stdout
    assert len(result.problems) == 1, result.problems
    [text] = result.problems
    for needle in needles:
        assert needle in text, (needle, text)
    assert "Traceback" not in result.stdout + result.stderr
    return text


# -- item 1: a local archive folder is checked like the data directory ---------------------------


@pytest.mark.parametrize("case", ["under a file", "is a file", "read-only parent"])
@pytest.mark.parametrize("mode", [(), ("--probe",)], ids=["runtime", "probe"])
def test_a_local_archive_folder_that_cannot_be_created_is_a_problem(tmp_path: Path, env: dict[str, str],
                                                                     case: str, mode: tuple[str, ...]) -> None:
    blocker = tmp_path / "f.txt"
    blocker.write_text("a file")
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o555)
    archive = {"under a file": blocker / "sub", "is a file": blocker, "read-only parent": readonly / "archive"}[case]
    env["HELIX_ARCHIVE"] = str(archive)
    result = subprocess.run([*UNPRIVILEGED, sys.executable, "-m", "preflight.checks", *mode], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    text = one_problem(Run(result.returncode, result.stdout, result.stderr), "HELIX_ARCHIVE", str(archive))
    assert "needs no remote definition" not in result.stdout, text


# -- item 11: values accepted before, wrong all the same -----------------------------------------


def test_an_rclone_binary_that_prints_no_version_names_the_variable_and_the_path(tmp_path: Path,
                                                                                 env: dict[str, str]) -> None:
    env["RCLONE_BINARY"] = "/bin/true"
    text = one_problem(run(tmp_path, env), "RCLONE_BINARY", "/bin/true")
    assert "''" not in text and "((" not in text and text.count("(") <= 1, text


def test_a_token_that_is_not_token_shaped_is_a_problem(tmp_path: Path, env: dict[str, str]) -> None:
    env["DISCORD_TOKEN"] = "abc"
    one_problem(run(tmp_path, env), "DISCORD_TOKEN")


@pytest.mark.parametrize("spec", [":nosuch:x", "x:"])
def test_an_unknown_backend_is_a_problem(tmp_path: Path, env: dict[str, str], spec: str) -> None:
    env["HELIX_ARCHIVE"] = spec
    if spec == "x:":
        env["RCLONE_CONFIG_X_TYPE"] = "nosuch"
    one_problem(run(tmp_path, env), "nosuch", "backend")


def test_a_stop_grace_longer_than_railways_draining_is_a_problem(tmp_path: Path, env: dict[str, str]) -> None:
    draining = tomllib.loads((ROOT / "railway.toml").read_text())["deploy"]["drainingSeconds"]
    env["HELIX_STOP_GRACE_S"] = str(draining + 30)
    one_problem(run(tmp_path, env), "HELIX_STOP_GRACE_S", "drainingSeconds", str(draining))


@pytest.mark.parametrize("value", ["0", str(2**64), "١٢٣", "-5"])
@pytest.mark.parametrize("name", ["HELIX_GUILD_ID", "HELIX_OWNER_IDS"])
def test_an_id_out_of_range_or_in_other_digits_is_a_problem(tmp_path: Path, env: dict[str, str], name: str,
                                                            value: str) -> None:
    env[name] = value
    one_problem(run(tmp_path, env), name)


def test_a_one_id_variable_says_one_id(tmp_path: Path, env: dict[str, str]) -> None:
    env["HELIX_HEARTBEAT_CHANNEL_ID"] = "general"
    text = one_problem(run(tmp_path, env), "HELIX_HEARTBEAT_CHANNEL_ID", "one Discord id")
    assert "list" not in text, text


def test_an_rclone_config_that_does_not_exist_is_a_problem(tmp_path: Path, env: dict[str, str]) -> None:
    env["RCLONE_CONFIG"] = str(tmp_path / "nonexistent.conf")
    one_problem(run(tmp_path, env), "RCLONE_CONFIG", "nonexistent.conf")


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no interpreter outside the virtualenv")
def test_outside_the_virtualenv_the_preflight_names_the_interpreter_and_the_one_to_use(
        tmp_path: Path, env: dict[str, str]) -> None:
    outside = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.prefix == sys.base_prefix)"],
                             capture_output=True, text=True)
    if outside.stdout.strip() != "True":
        pytest.skip("/usr/bin/python3 is itself a virtualenv")
    result = subprocess.run(["/usr/bin/python3", "-m", "preflight.checks"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    venv_python = ROOT / ".venv" / "bin" / "python"
    first = result.stderr.splitlines()[0] if result.stderr else ""
    assert "/usr/bin/python3" in first and str(venv_python) in first, result.stderr
    assert os.path.exists(venv_python)

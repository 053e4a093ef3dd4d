"""The preflight, run as operators run it (a subprocess), in deliberately broken environments.

Each test breaks one thing and expects a non-zero exit and exactly one ``problem:`` line naming it;
the last breaks everything at once and expects every line together. Every run also checks that the
token never appears in what the preflight prints.

How "a package from requirements.txt is missing" and "a version outside its specifier" are made:
the preflight reads the requirements file at run time, so these tests hand it (``--requirements``)
the real requirements.txt plus one line naming a distribution that does not exist, or one whose
specifier the installed version cannot meet. That is the same code path as a real missing package,
without uninstalling anything from the environment the other tests use; tests/deploy/test_dockerfile.py
removes real packages from a throwaway virtualenv and checks the image build fails on them.
"""

from __future__ import annotations

import ast
import errno
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from preflight import archive as preflight_archive
from preflight import checks as preflight
from preflight.packages import FIRST_PARTY
from sync._rclone.binary import find_rclone

ROOT = Path(__file__).resolve().parents[2]
# Shaped like a bot token (three dot-separated parts), valid nowhere.
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GaBcDe.helix-test-token-not-real-0123456789"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def problems(self) -> list[str]:
        return [line.removeprefix("problem: ") for line in self.stderr.splitlines() if line.startswith("problem: ")]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A healthy environment: a token, a writable data dir, no archive remote, a HOME with no rclone.conf."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": TOKEN, "HELIX_DATA_DIR": str(tmp_path / "data"),
    }


def run(tmp_path: Path, env: dict[str, str], *args: str) -> Run:
    # cwd is a temporary folder: no developer's .env can fill in what a test left unset.
    result = subprocess.run([sys.executable, "-m", "preflight.checks", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert TOKEN not in result.stdout + result.stderr, "the preflight printed the token"
    return Run(result.returncode, result.stdout, result.stderr)


def requirements_with(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "requirements-test.txt"
    path.write_text("\n".join([f"-r {ROOT / 'requirements.txt'}", *lines]) + "\n", encoding="utf-8")
    return path


def test_a_healthy_environment_passes(tmp_path: Path, env: dict[str, str]) -> None:
    result = run(tmp_path, env)
    assert result.code == 0, result.stderr
    assert result.problems == []
    assert "preflight (runtime): all checks passed." in result.stdout


def test_build_mode_needs_no_token_and_no_data_dir(tmp_path: Path, env: dict[str, str]) -> None:
    """Railway passes no variables to a build and mounts no volume there: build mode must not ask for them."""
    del env["DISCORD_TOKEN"]
    env["HELIX_DATA_DIR"] = "/proc/helix-cannot-exist"
    result = run(tmp_path, env, "--build")
    assert result.code == 0, result.stderr


def test_a_requirement_that_is_not_installed_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    reqs = requirements_with(tmp_path, "helix-no-such-distribution>=1,<2")
    result = run(tmp_path, env, "--requirements", str(reqs))
    assert result.code != 0
    assert len(result.problems) == 1, result.problems
    assert result.problems[0].startswith("helix-no-such-distribution is not installed")
    assert "pip install -r requirements.txt" in result.problems[0]


def test_a_version_outside_its_specifier_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    reqs = requirements_with(tmp_path, "structlog>=99,<100")
    result = run(tmp_path, env, "--requirements", str(reqs))
    assert result.code != 0
    assert len(result.problems) == 1, result.problems
    assert result.problems[0].startswith("structlog ") and "structlog>=99,<100" in result.problems[0]


def test_rclone_binary_pointing_nowhere_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    env["RCLONE_BINARY"] = "/nonexistent/rclone"
    result = run(tmp_path, env)
    assert result.code != 0
    assert len(result.problems) == 1 and "RCLONE_BINARY" in result.problems[0], result.problems


def test_an_rclone_older_than_the_minimum_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    old = tmp_path / "old-rclone"
    old.write_text("#!/bin/sh\necho 'rclone v1.60.1'\n", encoding="utf-8")
    old.chmod(0o755)
    env["RCLONE_BINARY"] = str(old)
    result = run(tmp_path, env)
    assert result.code != 0
    assert len(result.problems) == 1 and "1.60.1" in result.problems[0] and "too old" in result.problems[0]


def test_discord_token_unset_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    del env["DISCORD_TOKEN"]
    result = run(tmp_path, env)
    assert result.code != 0
    assert len(result.problems) == 1 and result.problems[0].startswith("DISCORD_TOKEN is not set")


def test_a_token_pasted_with_its_quotes_is_named_without_being_shown(tmp_path: Path, env: dict[str, str]) -> None:
    env["DISCORD_TOKEN"] = f'"{TOKEN}"'
    result = run(tmp_path, env)
    assert result.code != 0
    assert len(result.problems) == 1 and "quotes" in result.problems[0]


def test_helix_archive_naming_an_undefined_remote_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    env["HELIX_ARCHIVE"] = "nosuch:path"
    result = run(tmp_path, env)
    assert result.code != 0
    assert len(result.problems) == 1, result.problems
    assert "'nosuch'" in result.problems[0] and "RCLONE_CONFIG_NOSUCH_TYPE" in result.problems[0]


def test_a_remote_defined_by_variables_or_by_a_config_file_passes(tmp_path: Path, env: dict[str, str]) -> None:
    env["HELIX_ARCHIVE"] = "nosuch:path"
    assert run(tmp_path, {**env, "RCLONE_CONFIG_NOSUCH_TYPE": "local"}).code == 0
    conf = tmp_path / "rclone.conf"
    conf.write_text("[nosuch]\ntype = local\n", encoding="utf-8")
    assert run(tmp_path, {**env, "RCLONE_CONFIG": str(conf)}).code == 0


def test_a_mega_password_that_was_not_obscured_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    env.update(HELIX_ARCHIVE="mega:helix", RCLONE_CONFIG_MEGA_TYPE="mega", RCLONE_CONFIG_MEGA_USER="me@example.com",
               RCLONE_CONFIG_MEGA_PASS="plain password!")
    result = run(tmp_path, env)
    assert len(result.problems) == 1 and "RCLONE_CONFIG_MEGA_PASS" in result.problems[0]
    assert "plain password!" not in result.stdout + result.stderr
    obscured = subprocess.run([find_rclone(), "obscure", "-"], input="plain password!", capture_output=True,
                              text=True, check=True).stdout.strip()
    assert run(tmp_path, {**env, "RCLONE_CONFIG_MEGA_PASS": obscured}).code == 0


def test_an_unwritable_data_dir_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    # Tests may run as root, which chmod does not stop: a path under a regular file cannot be created by anyone.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    env["HELIX_DATA_DIR"] = str(blocker / "data")
    result = run(tmp_path, env)
    assert result.code != 0
    assert len(result.problems) == 1 and result.problems[0].startswith(f"HELIX_DATA_DIR {blocker / 'data'}")
    assert "is a file" in result.problems[0]


def test_a_multiply_broken_environment_lists_every_problem_together(tmp_path: Path, env: dict[str, str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n", encoding="utf-8")
    reqs = requirements_with(tmp_path, "helix-no-such-distribution>=1,<2", "structlog>=99,<100")
    del env["DISCORD_TOKEN"]
    env.update(RCLONE_BINARY="/nonexistent/rclone", HELIX_ARCHIVE="nosuch:path", HELIX_DATA_DIR=str(blocker / "d"))
    result = run(tmp_path, env, "--requirements", str(reqs))
    assert result.code != 0
    expected = ["helix-no-such-distribution", "structlog", "RCLONE_BINARY", "DISCORD_TOKEN", "HELIX_DATA_DIR",
                "'nosuch'"]
    for needle in expected:
        assert sum(needle in p for p in result.problems) == 1, f"{needle!r} not named exactly once: {result.problems}"
    assert len(result.problems) == len(expected), result.problems
    assert f"{len(expected)} problems found" in result.stderr


def test_probe_makes_a_round_trip_on_the_archive(tmp_path: Path, env: dict[str, str]) -> None:
    result = run(tmp_path, env, "--probe")
    assert result.code == 0, result.stderr
    assert "round trip on" in result.stdout and "delete" in result.stdout


def test_probe_names_the_step_where_an_unreachable_remote_failed(tmp_path: Path, env: dict[str, str]) -> None:
    env.update(HELIX_ARCHIVE=":webdav,url='http://127.0.0.1:9':helix", HELIX_LOW_LEVEL_RETRIES="1",
               HELIX_CONNECT_TIMEOUT_S="1", HELIX_RETRIES="0")
    result = run(tmp_path, env, "--probe")
    assert result.code != 0
    assert len(result.problems) == 1 and "at step 'upload'" in result.problems[0], result.problems


# -- in-process: what a subprocess cannot fake --------------------------------------------------------


def test_importing_the_preflight_loads_only_the_standard_library(tmp_path: Path, env: dict[str, str]) -> None:
    """It must run where packages are missing: so nothing outside the standard library loads before checking."""
    code = ("import sys; before = set(sys.modules); import preflight.checks; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=True)
    loaded = set(ast.literal_eval(result.stdout.strip()))
    assert loaded <= set(FIRST_PARTY), f"importing the preflight loaded third-party packages: {loaded}"


def test_an_unsupported_python_is_named_with_the_fix() -> None:
    finding = preflight.check_python((3, 10, 4))
    assert finding.level == "problem" and "3.10.4" in finding.text and "python:3.11-slim-bookworm" in finding.text
    assert preflight.check_python((3, 11, 9)).level == "ok"


def test_the_supported_python_is_pyproject_requires_python() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    (low, high) = preflight.SUPPORTED_PYTHON
    assert requires.replace(" ", "") == f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"


def test_a_root_owned_railway_volume_gets_the_railway_fix(tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    denied = PermissionError(errno.EACCES, "Permission denied")
    text = preflight_archive.data_dir_advice(volume, denied, {"RAILWAY_ENVIRONMENT": "production"}, uid=10001)
    assert "RAILWAY_RUN_UID=0" in text and "uid 10001" in text
    text = preflight_archive.data_dir_advice(volume, denied, {}, uid=1000)
    assert "chown -R 1000" in text and "RAILWAY" not in text


def test_a_data_dir_off_the_railway_volume_is_a_problem(tmp_path: Path) -> None:
    volume, data = tmp_path / "volume", tmp_path / "data"
    volume.mkdir()
    off = preflight_archive.check_data_dir({"RAILWAY_VOLUME_MOUNT_PATH": str(volume), "HELIX_DATA_DIR": str(data)})
    assert [f.level for f in off] == ["ok", "problem"] and f"HELIX_DATA_DIR={volume}" in off[1].text
    on = preflight_archive.check_data_dir({"RAILWAY_VOLUME_MOUNT_PATH": str(volume), "HELIX_DATA_DIR": str(volume)})
    assert [f.level for f in on] == ["ok"]
    none = preflight_archive.check_data_dir({"RAILWAY_ENVIRONMENT": "production", "HELIX_DATA_DIR": str(data)})
    assert [f.level for f in none] == ["ok", "warning"] and "volume" in none[1].text

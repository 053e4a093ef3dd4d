"""Every module of Helix imports in a fresh interpreter, with no settings in the environment.

The old bot met its missing modules one deploy at a time, three imports deep. Here each module is
imported alone in a new interpreter (so nothing an earlier import loaded can hide a missing
dependency), from a directory with no .env and with no DISCORD_TOKEN, HELIX_* or RCLONE_* set (so
a module that reads its configuration at import time fails here, not on Railway).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from preflight.packages import FIRST_PARTY

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = FIRST_PARTY


def project_modules() -> list[str]:
    modules = []
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            parts = list(file.relative_to(ROOT).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            modules.append(".".join(parts))
    return modules


def _clean_env(home: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": home, "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)}


@functools.cache
def _import_results() -> dict[str, subprocess.CompletedProcess[str]]:
    """Import every module, each in its own interpreter, a few at a time (the machine has 2 cores)."""
    home = tempfile.mkdtemp(prefix="helix-imports-")

    def run(module: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", f"import importlib; importlib.import_module({module!r})"],
            cwd=home, env=_clean_env(home), capture_output=True, text=True, timeout=120,
        )

    modules = project_modules()
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(modules, pool.map(run, modules), strict=True))


def test_the_project_has_modules_to_import() -> None:
    modules = project_modules()
    assert {"bot", "sync", "preflight.checks", "runtime.logs", "runtime.health", "sync._service"} <= set(modules)


@pytest.mark.parametrize("module", project_modules())
def test_module_imports_in_a_fresh_interpreter(module: str) -> None:
    result = _import_results()[module]
    assert result.returncode == 0, f"`import {module}` failed in a fresh interpreter:\n{result.stderr[-3000:]}"

"""The layers hold: what docs/ARCHITECTURE.md says about who may import whom is checked, not hoped for.

import-linter reads the contracts from pyproject.toml: the layers bottom to top, sync and the
renderers free of Discord, sync's private modules reached only through its face, and no import
cycles inside a package. Module size is checked here too: a module that outgrows one job is two.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from preflight.packages import FIRST_PARTY
from tests.support.programs import tool

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 350


def test_the_layer_contracts_are_kept() -> None:
    result = subprocess.run([tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"lint-imports found a broken layer contract:\n{report[-4000:]}"
    assert "0 broken" in report


@pytest.mark.parametrize("package", FIRST_PARTY)
def test_no_application_module_outgrows_one_job(package: str) -> None:
    too_long = {str(path.relative_to(ROOT)): n for path in sorted((ROOT / package).rglob("*.py"))
                if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"split these modules (over {MAX_MODULE_LINES} lines): {too_long}"


def test_every_application_package_is_under_contract() -> None:
    """A new top-level package must get a place in the layers, or the contracts say nothing about it."""
    config = (ROOT / "pyproject.toml").read_text()
    roots = config.split("root_packages = [", 1)[1].split("]", 1)[0]
    missing = [p for p in FIRST_PARTY if f'"{p}"' not in roots]
    assert not missing, f"add {missing} to [tool.importlinter] root_packages and to the layers in pyproject.toml"

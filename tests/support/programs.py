"""Finding the command-line tools requirements-dev.txt installs (linters), with or without an activated venv."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import pytest


def tool(name: str) -> str:
    """The path of ``name`` beside this interpreter (or on PATH); fails the test with the fix if absent."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `pip install -r requirements-dev.txt`.")
    return found

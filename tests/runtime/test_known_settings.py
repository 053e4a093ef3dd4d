"""The list of HELIX_* names Helix reads, which flags a typo, must be the names the code reads: a new
setting missing from it would be flagged as a typo on every start."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.env import KNOWN_SETTINGS, unknown_settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runtime", "render", "sync", "catalogue", "capture", "preflight", "bot", "bench")


def test_every_helix_variable_the_code_reads_is_known() -> None:
    read = set()
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            read |= set(re.findall(r"[\"'](HELIX_[A-Z0-9_]+)[\"']", source.read_text(encoding="utf-8")))
    assert read - KNOWN_SETTINGS == set(), "add these to runtime.env.KNOWN_SETTINGS"


def test_a_typo_is_told_the_name_it_meant() -> None:
    assert unknown_settings({"HELIX_ARCHVE": "mega:x", "HELIX_ARCHIVE": "", "PATH": "/bin"}) == [
        "HELIX_ARCHVE is set but Helix reads no such variable, so it is ignored: did you mean HELIX_ARCHIVE?"]
